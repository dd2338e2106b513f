"""SIGTERM / SIGINT during training (at the first buffer fill, right after a resume, mid-run, during the final save):
a complete checkpoint, written atomically, and a resume that trains on exactly the uninterrupted run's token stream
and masks (recorded at the LLM's input) and ends with the same SAE."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
import torch
from sae_lens import LoggingConfig, TopKTrainingSAEConfig
from sae_lens.constants import ACTIVATIONS_STORE_STATE_FILENAME
from safetensors.torch import load_file
from tiny_transformer import TINY_HOOK
from training_helpers import REPO_NAME_ID, recorded_inputs, tiny_runner_settings

from sae_mask_plugin import MaskedMultiSAETrainingRunner, MaskedMultiSAETrainingRunnerConfig, MaskingConfig
from sae_mask_plugin.training.interruption import (
    CHECKPOINT_COMPLETE_FILENAME,
    TrainingInterrupted,
    latest_complete_checkpoint,
    save_checkpoint_atomically,
)

SCRIPT = Path(__file__).with_name("interruptible_training.py")
MASKING = MaskingConfig(p=0.3, mask_token=REPO_NAME_ID)


def start(out: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(SCRIPT.parent), str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def run_to_end(out: Path, *args: str) -> None:
    returncode, stderr = finish(start(out, *args))
    assert returncode == 0, stderr[-3000:]


def llm_inputs(out: Path) -> list[list[list[int]]]:
    return [json.loads(line) for line in (out / "llm_inputs.jsonl").read_text().splitlines()]


def sae_weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "sae_weights.safetensors"))


def partial_folders(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if ".partial-" in path.name]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    run_to_end(out)
    return out


def signal_when_paused(out: Path, signum: signal.Signals, *args: str) -> str:
    """Run the training with `args` until it pauses, send `signum`; returns its stderr (it must fail)."""
    process = start(out, *args)
    while not (out / "paused").exists():
        assert process.poll() is None, finish(process)[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signum)
    returncode, stderr = finish(process)
    (out / "paused").unlink()
    assert returncode != 0
    assert partial_folders(out) == []
    return stderr


def interrupt(out: Path, signum: signal.Signals, *args: str) -> Path:
    """`signal_when_paused` during training; checks the checkpoint it names and returns it."""
    stderr = signal_when_paused(out, signum, *args)
    checkpoint = latest_complete_checkpoint(out / "checkpoints")
    assert checkpoint is not None and f"complete checkpoint saved to {checkpoint}" in stderr
    assert {"sae_weights.safetensors", "trainer_state.pt", "activations_store_state.safetensors"} <= {
        path.name for path in checkpoint.iterdir()
    }
    assert not (out / "sae").exists()
    return checkpoint


def test_signals_save_complete_checkpoints_and_resumed_runs_lose_nothing(
    tmp_path: Path, uninterrupted: Path
) -> None:
    out = tmp_path / "run"
    during_first_fill = interrupt(out, signal.SIGINT, "--pause-at", "llm:1")
    unserved = load_file(str(during_first_fill / ACTIVATIONS_STORE_STATE_FILENAME))["mixing_buffer_unserved"]
    assert unserved.shape[0] > 0  # the next checkpoint is taken while these restored rows are being served
    while_serving_restored_rows = interrupt(
        out, signal.SIGTERM, "--resume", str(during_first_fill), "--pause-at", "step:1"
    )
    mid_run = interrupt(
        out, signal.SIGTERM, "--resume", str(while_serving_restored_rows), "--pause-at", "llm:6"
    )
    # A signal during the final save lets the save finish.
    stderr = signal_when_paused(out, signal.SIGTERM, "--resume", str(mid_run), "--pause-at", "save")
    assert f"the trained SAE was saved to {out / 'sae'}" in stderr

    # Every LLM batch of the uninterrupted run, each once: those drawn before each signal, then the resumed ones.
    assert llm_inputs(out) == llm_inputs(uninterrupted)
    assert {path.name for path in (out / "sae").iterdir()} == {
        path.name for path in (uninterrupted / "sae").iterdir()
    }
    expected = sae_weights(uninterrupted / "sae")
    got = sae_weights(out / "sae")
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected)


@pytest.fixture(scope="module")
def token_rows() -> datasets.Dataset:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(100, 5000, (400, 32), generator=generator)
    rows[:, 0] = 1
    return datasets.Dataset.from_dict({"tokens": rows.tolist()})


def test_multi_sae_runner_resumes_an_interrupted_k_sweep_exactly(tmp_path, tiny_model, token_rows) -> None:
    def runner(name: str, resume: Path | None = None) -> MaskedMultiSAETrainingRunner:
        settings = tiny_runner_settings(tmp_path / name)
        for key in ("model_name", "hook_name", "output_path", "checkpoint_path"):
            settings.pop(key)
        cfg = MaskedMultiSAETrainingRunnerConfig(
            saes={f"k{k}": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=k) for k in (2, 4)},
            hook_names=TINY_HOOK,
            masking=MASKING,
            logger=LoggingConfig(log_to_wandb=False),
            output_path=str(tmp_path / name / "multi"),
            checkpoint_path=str(tmp_path / name / "checkpoints"),
            resume_from_checkpoint=None if resume is None else str(resume),
            **settings,
        )
        return MaskedMultiSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=token_rows)

    handler_before = signal.getsignal(signal.SIGTERM)  # whatever an earlier run in this process left
    with recorded_inputs(tiny_model) as expected_inputs:
        runner("a").run()
    with recorded_inputs(tiny_model) as inputs:
        handle = tiny_model.embed.register_forward_pre_hook(
            lambda _module, _args: os.kill(os.getpid(), signal.SIGTERM) if len(inputs) == 7 else None
        )
        try:
            with pytest.raises(TrainingInterrupted, match="complete checkpoint saved to") as stopped:
                runner("b").run()
        finally:
            handle.remove()
        assert stopped.value.signum == signal.SIGTERM and stopped.value.checkpoint is not None
        assert (
            signal.getsignal(signal.SIGTERM) is handler_before
        )  # the handler in place before the run is back
        assert not (tmp_path / "b" / "multi").exists()
        runner("c", resume=stopped.value.checkpoint).run()
    assert len(inputs) == len(expected_inputs)
    assert all(torch.equal(got, expected) for got, expected in zip(inputs, expected_inputs, strict=True))
    for k in (2, 4):
        expected = sae_weights(tmp_path / "a" / "multi" / f"k{k}")
        got = sae_weights(tmp_path / "c" / "multi" / f"k{k}")
        assert all(torch.equal(got[name], expected[name]) for name in expected)


def test_a_failing_checkpoint_write_leaves_nothing_to_resume_from(tmp_path: Path) -> None:
    def write_then_fail(name: str) -> None:
        (tmp_path / name / "sae_weights.safetensors").write_text("half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save_checkpoint_atomically(tmp_path, "1280", write_then_fail)
    assert list(tmp_path.iterdir()) == []

    incomplete = tmp_path / "run" / "2560"  # e.g. a periodic checkpoint cut short by kill -9: no marker
    incomplete.mkdir(parents=True)
    complete = tmp_path / "run" / "1280"
    complete.mkdir()
    (complete / CHECKPOINT_COMPLETE_FILENAME).write_text("{}")
    assert latest_complete_checkpoint(tmp_path) == complete
