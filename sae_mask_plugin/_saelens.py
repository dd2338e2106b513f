"""The one place that touches SAELens's private names.

SAELens offers no public hook for what the masked runners change: the context windows a store draws, the
multi-hook batch it filters, the step boundary of a trainer, the final save of the multi-SAE runner. Each use of
a private SAELens name (an `_name` attribute or method, or a `__dict__` copy) is one small seam here, under a
public name of ours, with a test in `tests/training/test_saelens_seams.py` that fails when a SAELens release
renames or reshapes it. The rest of the package uses these names only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from sae_lens.multi_sae_training_runner import MultiSAETrainingRunner
from sae_lens.saes.sae import TrainingSAE
from sae_lens.training.activations_store import ActivationsStore
from sae_lens.training.multi_sae_trainer import MultiSAETrainer
from sae_lens.training.sae_trainer import SAETrainer

_Store = TypeVar("_Store", bound="ActivationsStoreSeams")


class ActivationsStoreSeams(ActivationsStore):
    """SAELens's `ActivationsStore` with the private members a subclass builds on under public names.

    Override `iterate_context_windows` and `get_filtered_multi_hook_llm_batch` to change what SAELens's own code
    calls; call `filtered_activations`, `filtered_multi_hook_activations` and `hook_widths` to read what only
    SAELens's private members give.
    """

    @classmethod
    def from_store(cls: type[_Store], store: ActivationsStore) -> _Store:
        """Adopt `store` (built by a SAELens runner, which offers no factory for a subclass) as a `cls`: same
        dataset, settings and position. Only a store that has not started streaming can be adopted.

        Copies the instance's `__dict__` and rebinds the context-window generator, which is bound to `store`.
        """
        if store._dataloader is not None:
            raise ValueError("only a store that has not started streaming can be adopted")
        adopted = cls.__new__(cls)
        adopted.__dict__.update(store.__dict__)
        if adopted.dataset is not None:
            adopted.iterable_sequences = adopted.iterate_context_windows()  # it has not started yet
        return adopted

    def iterate_context_windows(self) -> Iterator[torch.Tensor]:
        """A new pass over the dataset's context windows, each [context_size] (SAELens's
        `_iterate_tokenized_sequences`, which SAELens calls for each new epoch)."""
        return super()._iterate_tokenized_sequences()

    def _iterate_tokenized_sequences(self) -> Iterator[torch.Tensor]:  # type: ignore[override]
        return self.iterate_context_windows()

    def get_filtered_multi_hook_llm_batch(self, raise_on_epoch_end: bool = False) -> dict[str, torch.Tensor]:
        """One LLM pass at every hook, special tokens filtered out: {hook: [n, d_in of the hook]} (SAELens's
        `_get_filtered_multi_hook_llm_batch`, which SAELens's multi-hook stream calls)."""
        return super()._get_filtered_multi_hook_llm_batch(raise_on_epoch_end)

    def _get_filtered_multi_hook_llm_batch(self, raise_on_epoch_end: bool = False) -> dict[str, torch.Tensor]:
        return self.get_filtered_multi_hook_llm_batch(raise_on_epoch_end)

    def filtered_activations(self) -> Iterator[torch.Tensor]:
        """SAELens's endless stream of filtered LLM batches [n, d_in], starting a new epoch when the dataset
        ends (`_iterate_filtered_activations`: what SAELens's mixing buffer is fed)."""
        return super()._iterate_filtered_activations()

    def filtered_multi_hook_activations(self) -> Iterator[dict[str, torch.Tensor]]:
        """The multi-hook `filtered_activations`: {hook: [n, d_in of the hook]} per LLM pass
        (`_iterate_filtered_multi_hook_activations`)."""
        return super()._iterate_filtered_multi_hook_activations()

    @property
    def hook_widths(self) -> dict[str, int] | None:
        """{hook: d_in} of a multi-hook store (`from_config_multi_hook`), in SAELens's packing order; None for
        a single-hook store (`_hook_names`, `_hook_d_ins`)."""
        if self._hook_names is None:
            return None
        assert self._hook_d_ins is not None
        return {hook: self._hook_d_ins[hook] for hook in self._hook_names}


Trainer = SAETrainer[Any, Any] | MultiSAETrainer


def on_step_end(trainer: Trainer, callback: Callable[[], None], progress_interval: int) -> None:
    """Call `callback()` at the end of every step of `trainer.fit()`, once the step's counters, periodic
    checkpoint and progress bar are done, and move the progress bar every `progress_interval` steps (SAELens:
    100).

    SAELens's trainers take no step callback: this wraps the trainer's `_update_pbar`, the last call of each
    step, on this trainer only.
    """
    update_pbar = trainer._update_pbar

    def update_pbar_then_callback(step_output: Any, pbar: Any, update_interval: int = 100) -> None:
        update_pbar(step_output, pbar, update_interval=progress_interval)
        callback()

    trainer._update_pbar = update_pbar_then_callback  # type: ignore[method-assign]


class MultiSAETrainingRunnerSeams(MultiSAETrainingRunner):
    """SAELens's `MultiSAETrainingRunner` with its private hooks under the public names of the single-SAE
    runner (`LanguageModelSAETrainingRunner`): override `run_trainer_with_interruption_handling`,
    `save_checkpoint` and `save_final_saes`."""

    def run_trainer_with_interruption_handling(self, trainer: MultiSAETrainer) -> dict[str, TrainingSAE[Any]]:
        """Fit `trainer` (`_run_with_interruption_handling`)."""
        return super()._run_with_interruption_handling(trainer)

    def _run_with_interruption_handling(self, trainer: MultiSAETrainer) -> dict[str, TrainingSAE[Any]]:
        return self.run_trainer_with_interruption_handling(trainer)

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        """Write the runner's files (store state, runner config) into a checkpoint the trainer has written
        (`_save_runner_checkpoint_files`)."""
        super()._save_runner_checkpoint_files(checkpoint_path)

    def _save_runner_checkpoint_files(self, checkpoint_path: Path | None) -> None:
        self.save_checkpoint(checkpoint_path)

    def save_final_saes(
        self, saes: dict[str, TrainingSAE[Any]], trainer: MultiSAETrainer, output_path: str
    ) -> None:
        """SAELens's final save (a folder per SAE, the runner config) into `output_path` instead of
        `cfg.output_path`, which is left unchanged (`_save_final_outputs`, run on a copy of the runner)."""
        runner = copy.copy(self)
        runner.cfg = copy.copy(self.cfg)
        runner.cfg.output_path = output_path
        MultiSAETrainingRunner._save_final_outputs(runner, saes, trainer)

    def _save_final_outputs(self, saes: dict[str, TrainingSAE[Any]], trainer: MultiSAETrainer) -> None:
        assert self.cfg.output_path is not None  # SAELens calls it only when an output path is set
        self.save_final_saes(saes, trainer, self.cfg.output_path)
