"""An interrupted sweep resumes: a rerun continues from the group's latest complete checkpoint, and a job-array
task preempted under submitit's local executor checkpoints, requeues itself and resumes. Both end with the SAE of
an uninterrupted run. A checkpoint written with other settings is refused before any model is loaded."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from sae_mask_plugin.sweep import Recipe, run_recipe
from sae_mask_plugin.sweep.execute import submit_shards, train_group
from sae_mask_plugin.sweep.plan import plan
from sae_mask_plugin.training.activations_store import MaskedActivationsStore
from sae_mask_plugin.training.interruption import (
    CHECKPOINT_COMPLETE_FILENAME,
    TrainingInterrupted,
    latest_complete_checkpoint,
    preemption_signal,
)

RUN_NAME = "batchtopk-k16-w256-p0.3-token-s0"


def tiny_recipe(**changes) -> Recipe:
    return Recipe.from_dict(
        {
            "name": "tiny",
            "model_name": "SmolLM2-135M-Instruct",
            "hook_name": "blocks.1.hook_resid_post",
            "d_in": 576,
            "training_tokens": 16384,
            "runner": {
                "context_size": 64,
                "store_batch_size_prompts": 8,
                "n_batches_in_buffer": 16,
                "train_batch_size_tokens": 1024,
                "lr": 0.004,
                "exclude_special_tokens": True,
                "n_checkpoints": 3,
            },
            "masking": {"mask_token": "<repo_name>"},
            "grid": {"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": 0.3},
            "report": False,
            "slurm": {"gpus_per_node": 0, "cpus_per_task": 1, "timeout_min": 20},
            **changes,
        }
    )


def sae_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "saes" / RUN_NAME / "sae_weights.safetensors"))


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    run_recipe(tiny_recipe(), out)
    return out


def count_llm_batches(monkeypatch, stop_at: int | None = None) -> list[int]:
    """Count the masked LLM passes; at pass `stop_at` this process sends itself SIGTERM."""
    calls: list[int] = []
    activations = MaskedActivationsStore.get_multi_hook_activations

    def counted(self, tokens):
        calls.append(len(calls) + 1)
        if len(calls) == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return activations(self, tokens)

    monkeypatch.setattr(MaskedActivationsStore, "get_multi_hook_activations", counted)
    return calls


@pytest.mark.slow
def test_a_rerun_of_an_interrupted_sweep_resumes(tmp_path: Path, uninterrupted: Path, monkeypatch) -> None:
    out = tmp_path / "sweep"
    before = count_llm_batches(monkeypatch, stop_at=20)
    with pytest.raises(TrainingInterrupted, match="complete checkpoint saved"):
        run_recipe(tiny_recipe(), out)
    assert not (out / "saes").exists()
    after = count_llm_batches(monkeypatch)
    run_recipe(tiny_recipe(), out)
    expected = count_llm_batches(monkeypatch)
    run_recipe(tiny_recipe(), tmp_path / "again")
    assert len(before) + len(after) == len(expected)  # no LLM batch drawn twice or skipped
    assert_same_weights(sae_weights(out), sae_weights(uninterrupted))


@pytest.mark.slow
def test_a_preempted_submitit_task_requeues_and_resumes(tmp_path: Path, uninterrupted: Path) -> None:
    out = tmp_path / "sweep"
    (job,) = submit_shards(tiny_recipe(), out, cluster="local")
    controller = psutil.Process(job._process.pid)
    deadline = time.monotonic() + 300
    # A periodic checkpoint shows that training is under way.
    while latest_complete_checkpoint(out / "checkpoints") is None:
        assert time.monotonic() < deadline and job._process.poll() is None, job.stderr()
        time.sleep(0.1)
    (task,) = controller.children()
    task.send_signal(preemption_signal())

    paths = job.result()
    assert paths == [out / "saes" / RUN_NAME]
    log = job.stderr() or ""
    assert f"Training stopped by {preemption_signal().name}" in log
    assert "Requeued job" in log and "Resuming from checkpoint" in (job.stdout() or "") + log
    assert_same_weights(sae_weights(out), sae_weights(uninterrupted))


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    recipe = tiny_recipe()
    (group,) = plan(recipe)
    checkpoint = tmp_path / "checkpoints" / group.name / "ab12cd34" / "4096"
    (checkpoint / RUN_NAME).mkdir(parents=True)
    other = tiny_recipe(training_tokens=32768)
    saved = plan(other)[0].runner_config(other, checkpoint_path=str(checkpoint.parent)).to_dict()
    (checkpoint / "runner_cfg.json").write_text(json.dumps(saved, default=str))
    (checkpoint / CHECKPOINT_COMPLETE_FILENAME).write_text("{}")
    with pytest.raises(ValueError, match=r"written with other settings \(training_tokens\)"):
        train_group(recipe, group, tmp_path)
