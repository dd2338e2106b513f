"""An interrupted sweep resumes: a rerun continues from the group's latest complete checkpoint, and a job-array
task preempted under submitit's local executor checkpoints, requeues itself and resumes. Both end with the SAE of
an uninterrupted run. A checkpoint written with other settings is refused before any model is loaded."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file
from tiny_recipes import tiny_recipe_dict

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

pytestmark = pytest.mark.xdist_group("sweep_interruption")  # one worker runs the uninterrupted sweep


def tiny_recipe(**changes) -> Recipe:
    settings = {
        "grid": {"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": 0.3},
        "report": False,
        "slurm": {"gpus_per_node": 0, "cpus_per_task": 1, "timeout_min": 20},
    }
    return Recipe.from_dict(tiny_recipe_dict(runner={"n_checkpoints": 3}, **(settings | changes)))


def sae_weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "saes" / RUN_NAME / "sae_weights.safetensors"))


def assert_same_weights(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


class LLMPasses:
    """Counts the masked LLM passes of the multi-SAE store; at pass `stop_at` the process sends itself SIGTERM."""

    def __init__(self, patcher: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.stop_at: int | None = None
        activations = MaskedActivationsStore.get_multi_hook_activations

        def counted(store, tokens):
            self.count += 1
            if self.count == self.stop_at:
                os.kill(os.getpid(), signal.SIGTERM)
            return activations(store, tokens)

        patcher.setattr(MaskedActivationsStore, "get_multi_hook_activations", counted)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, int]:
    """The uninterrupted sweep's folder and its number of LLM passes."""
    out = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as patcher:
        passes = LLMPasses(patcher)
        run_recipe(tiny_recipe(), out)
    return out, passes.count


@pytest.mark.slow
def test_a_rerun_of_an_interrupted_sweep_resumes(
    tmp_path: Path, uninterrupted: tuple[Path, int], monkeypatch
) -> None:
    out = tmp_path / "sweep"
    passes = LLMPasses(monkeypatch)
    passes.stop_at = 10
    with pytest.raises(TrainingInterrupted, match="complete checkpoint saved") as stopped:
        run_recipe(tiny_recipe(), out)
    assert not (out / "saes").exists()
    passes.stop_at = None
    run_recipe(tiny_recipe(), out)
    expected_out, expected_passes = uninterrupted
    assert passes.count == expected_passes  # no LLM batch drawn twice or skipped
    # The rerun saves only the periodic checkpoints still ahead (3 checkpoints of 8 steps of 1,024 tokens).
    checkpoint = stopped.value.checkpoint
    assert checkpoint is not None
    resumed = {path.name for path in checkpoint.parent.parent.glob("*/*") if path.parent != checkpoint.parent}
    assert resumed == {str(samples) for samples in (3072, 5120, 7168) if samples > int(checkpoint.name)}
    assert_same_weights(sae_weights(out), sae_weights(expected_out))


@pytest.mark.slow
def test_a_preempted_submitit_task_requeues_and_resumes(
    tmp_path: Path, uninterrupted: tuple[Path, int]
) -> None:
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
    assert "Requeued job" in (job.stdout() or "")
    stopped = re.search(
        rf"Training stopped by {preemption_signal().name} .* complete checkpoint saved to (\S+)\.",
        job.stderr() or "",
    )
    assert stopped is not None
    checkpoint = Path(stopped.group(1))
    # The requeued task resumed from that checkpoint: its own checkpoints (in a new folder) all come later.
    resumed = [path for path in checkpoint.parent.parent.glob("*/*") if path.parent != checkpoint.parent]
    assert resumed and all(int(path.name) > int(checkpoint.name) for path in resumed)
    assert_same_weights(sae_weights(out), sae_weights(uninterrupted[0]))


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
