"""Stopping training on SIGTERM, SIGINT or submitit's preemption signal with a complete checkpoint, and finding the
checkpoint to resume from.

A signal does not stop training where it lands. It is recorded, the current training step finishes, and the runner
writes a complete SAELens checkpoint (SAE weights, optimizer, LR and coefficient schedulers, trainer counters, the
activation store's position with its mixing buffer, the masking generator) into a staging folder that is renamed
into place, then raises `TrainingInterrupted` naming it. Further signals while stopping are ignored (SIGKILL stops
at once; the staging folder then never becomes a checkpoint). SAELens's own interrupt save (6.54) is replaced: it
writes the store state into a folder it never creates and saves no weights or optimizer.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from sae_lens.training.multi_sae_trainer import MultiSAETrainer
from sae_lens.training.sae_trainer import SAETrainer

from sae_mask_plugin._saelens import on_step_end
from sae_mask_plugin.errors import TrainingInterrupted
from sae_mask_plugin.files import publish, write_json_atomic

logger = logging.getLogger(__name__)

CHECKPOINT_COMPLETE_FILENAME = "checkpoint_complete.json"
"""Written last into every checkpoint the masked runners save (periodic or on a signal): no file, no resume."""
PREEMPTION_SIGNAL_ENV = "SUBMITIT_PREEMPT_SIGNAL"
"""submitit's variable naming its timeout/preemption signal (without "SIG"; submitit's default is USR2)."""
_STAGING_MARK = ".partial-"


def preemption_signal() -> signal.Signals:
    """The signal submitit (and SLURM's `--signal`) sends before a time limit or preemption."""
    name = os.environ.get(PREEMPTION_SIGNAL_ENV, "USR2")
    return signal.Signals[f"SIG{name}"]


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals that stop training with a checkpoint."""
    try:
        return (signal.SIGINT, signal.SIGTERM, preemption_signal())
    except KeyError:  # a platform without SIGUSR2 (Windows)
        return (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A signal handler that records the first stop signal (`signum`) instead of stopping where it lands."""

    signum: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            logger.warning(f"{name} received while already stopping; ignored (SIGKILL stops at once)")
            return
        self.signum = signum
        logger.warning(f"{name} received: finishing the current step, then saving a checkpoint")

    @property
    def name(self) -> str:
        assert self.signum is not None
        return signal.Signals(self.signum).name


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Record `stop_signals()` in a `StopRequest` for the duration; the previous handlers come back after.

    Outside the main thread, where Python cannot install handlers, signals keep their current handlers.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {signum: signal.signal(signum, request) for signum in stop_signals()}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _StopAtStepBoundary(Exception):
    """Raised after a completed training step once a stop signal was recorded."""


def fit_or_checkpoint(
    trainer: SAETrainer[Any, Any] | MultiSAETrainer,
    request: StopRequest,
    checkpoint_root: str | None,
    progress_interval: int = 100,
) -> Any:
    """`trainer.fit()`, stopped after the step during which `request` records a signal: then a complete checkpoint
    `<checkpoint_root>/<n_training_samples>` is saved atomically and `TrainingInterrupted` is raised. The progress
    bar moves every `progress_interval` steps."""

    def stop_if_requested() -> None:
        if request.signum is not None:
            raise _StopAtStepBoundary

    on_step_end(trainer, stop_if_requested, progress_interval)
    # A resumed SAELens trainer keeps the periodic-checkpoint thresholds it has passed and would save one checkpoint
    # per step until they are used up.
    trainer.checkpoint_thresholds = [
        threshold for threshold in trainer.checkpoint_thresholds if threshold >= trainer.n_training_samples
    ]
    try:
        return trainer.fit()
    except _StopAtStepBoundary:
        pass
    assert request.signum is not None
    samples = trainer.n_training_samples
    if checkpoint_root is None:
        raise TrainingInterrupted(
            f"Training stopped by {request.name} after {samples:,} training samples; nothing was saved because "
            "checkpoint_path is None.",
            request.signum,
        )
    checkpoint = save_checkpoint_atomically(Path(checkpoint_root), str(samples), trainer.save_checkpoint)
    message = (
        f"Training stopped by {request.name} after {samples:,} training samples; complete checkpoint saved to "
        f"{checkpoint}. Resume with resume_from_checkpoint={checkpoint} (sae-mask train "
        f"--resume_from_checkpoint {checkpoint}); a rerun of the same sweep or demo resumes by itself."
    )
    logger.warning(message)
    raise TrainingInterrupted(message, request.signum, checkpoint)


def stopped_after_training(request: StopRequest, output_path: str | None) -> TrainingInterrupted:
    """The error for a signal that arrived after the last step: the final save was let finish first."""
    assert request.signum is not None
    saved = f"the trained SAE was saved to {output_path}" if output_path else "no output_path was set"
    return TrainingInterrupted(
        f"Stopped by {request.name} after training had finished; {saved} before stopping.", request.signum
    )


def save_checkpoint_atomically(root: Path, name: str, write: Callable[[str], None]) -> Path:
    """Have `write(staging_name)` write a checkpoint into `root/staging_name`, then rename it to `root/name`
    (replacing an older one of that name). A failure leaves no folder that could be resumed from."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}{_STAGING_MARK}", dir=root))
    target = root / name
    try:
        write(staging.name)
        if not (staging / CHECKPOINT_COMPLETE_FILENAME).is_file():
            raise RuntimeError(f"the checkpoint written to {staging} is incomplete")
        if target.exists():
            shutil.rmtree(target)
        publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def mark_checkpoint_complete(checkpoint: str | Path) -> None:
    """Write the completion marker; the runners call it as the last write of every checkpoint."""
    write_json_atomic(Path(checkpoint) / CHECKPOINT_COMPLETE_FILENAME, {"complete": True})


def _samples_of(checkpoint: Path) -> int:
    # SAELens names checkpoints by their training-sample count (`final_<n>` for the final one).
    found = re.search(r"(\d+)$", checkpoint.name)
    return int(found.group(1)) if found else -1


def latest_complete_checkpoint(root: str | Path, required: tuple[str, ...] = ()) -> Path | None:
    """The complete checkpoint under `root` with the most training samples (None when there is none).

    `required`: sub-folders it must hold (the SAE names of a multi-SAE checkpoint).
    """
    complete = [
        marker.parent
        for marker in Path(root).rglob(CHECKPOINT_COMPLETE_FILENAME)
        if _STAGING_MARK not in str(marker.relative_to(root))
        and all((marker.parent / name).is_dir() for name in required)
    ]
    return max(complete, key=_samples_of, default=None)
