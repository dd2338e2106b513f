"""Masked SAELens runners: the single-SAE runner and the multi-SAE runner, as thin subclasses.

Each runner checks its input before loading the model (`preflight`), seeds the SAE initialisation with `seed`
(SAELens leaves it to the global RNG), builds SAELens's own store and adopts it as a `MaskedActivationsStore`,
and writes the masking settings and the LLM dtype into every SAE's metadata. Same seed, same data: a baseline (p = 0) and a masked
run see the same texts in the same order and start from the same SAE.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Protocol

import torch
from sae_lens.config import HfDataset
from sae_lens.constants import RUNNER_CFG_FILENAME
from sae_lens.llm_sae_training_runner import LanguageModelSAETrainingRunner
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig
from sae_lens.training.multi_sae_trainer import MultiSAETrainer
from sae_lens.training.sae_trainer import SAETrainer
from transformer_lens import HookedRootModule

from sae_mask_plugin._saelens import MultiSAETrainingRunnerSeams
from sae_mask_plugin.calibration.settings import CALIBRATION_METADATA_KEY, not_calibratable_reason
from sae_mask_plugin.calibration.threshold import calibrate_saved_saes_at_hooks
from sae_mask_plugin.files import staged_directory, write_json_atomic
from sae_mask_plugin.llm_dtype import model_llm_dtype
from sae_mask_plugin.masking.config import MaskingConfig
from sae_mask_plugin.sae_metadata import (
    masking_record,
    read_cache_llm_dtype,
    read_cache_masking,
    write_compute_metadata,
    write_masking_metadata,
)
from sae_mask_plugin.training.activations_store import MaskedActivationsStore
from sae_mask_plugin.training.config import (
    MaskedLanguageModelSAERunnerConfig,
    MaskedMultiSAETrainingRunnerConfig,
    warn_when_poorly_mixed,
)
from sae_mask_plugin.training.interruption import (
    StopRequest,
    fit_or_checkpoint,
    mark_checkpoint_complete,
    stop_requests,
    stopped_after_training,
)
from sae_mask_plugin.training.preflight import build_masker, check_cached_window_length, preflight
from sae_mask_plugin.training.settings import B_DEC_INITS, BDecInit
from sae_mask_plugin.training.sparse_step import with_sparse_step

PROGRESS_UPDATE_STEPS = 10
"""SAELens's trainers move their progress bar every 100 steps (204,800 tokens at 2,048 tokens a step), so a short
run shows 0 % until it ends; the masked runners move it every 10 steps, and runs shorter than 100 steps every
tenth of the run (every step below 20 steps)."""


def progress_interval(total_steps: int) -> int:
    """Steps between progress-bar updates of a run of `total_steps` (`PROGRESS_UPDATE_STEPS` at most)."""
    return max(1, min(PROGRESS_UPDATE_STEPS, total_steps // 10))


def fit_masked(
    trainer: SAETrainer[Any, Any] | MultiSAETrainer,
    store: MaskedActivationsStore,
    request: StopRequest,
    checkpoint_root: str | None,
) -> Any:
    """Fit `trainer`, fed by `store`, with its progress bar moved every `progress_interval` steps; on a stop
    signal save a complete checkpoint at the next step boundary (`fit_or_checkpoint`)."""
    store.training_stream = trainer.data_provider
    steps = trainer.cfg.total_training_samples // trainer.cfg.train_batch_size_samples
    return fit_or_checkpoint(trainer, request, checkpoint_root, progress_interval=progress_interval(steps))


def masking_seed(masking: MaskingConfig, run_seed: int) -> int:
    """The masking generator's seed: `masking.seed`, else the run's seed."""
    return run_seed if masking.seed is None else masking.seed


class MaskedRunSettings(Protocol):
    """What the masked runner and cache configs share: the masking and the run's token stream settings."""

    masking: MaskingConfig
    context_size: int
    prepend_bos: bool
    training_tokens: int
    seed: int


def attach_masking(
    store: MaskedActivationsStore, cfg: MaskedRunSettings, model: HookedRootModule
) -> str | None:
    """Give `store` the masker of `cfg.masking` (mask token resolved or measured on the store's dataset) and
    return the mask token string; a baseline gets no masker."""
    masking = cfg.masking
    if not masking.is_active:
        return None
    assert store.dataset is not None
    masker, mask_token_string = build_masker(
        masking,
        model,
        hook_name=store.hook_name,
        dataset=store.dataset,
        context_size=cfg.context_size,
        prepend_bos=cfg.prepend_bos,
        total_tokens=cfg.training_tokens,
        seed=masking_seed(masking, cfg.seed),
    )
    store.attach_masker(masker, loss_positions=masking.loss_positions, max_norm_ratio=masking.max_norm_ratio)
    return mask_token_string


def store_masking_record(
    store: MaskedActivationsStore, mask_token_string: str | None
) -> dict[str, Any] | None:
    """The masking record of the run `store` feeds (None for a baseline)."""
    if store.masker is None:
        return None
    return masking_record(store.masker, mask_token_string, store.first_batch_norm_ratio)


@torch.no_grad()
def init_b_dec_to_mean(sae: TrainingSAE[Any], activations: torch.Tensor) -> None:
    """Set the decoder bias to the mean of `activations` [n, d_in] (short runs converge much faster)."""
    sae.b_dec.data.copy_(activations.to(sae.b_dec.device, sae.b_dec.dtype).mean(dim=0))


class MaskedLanguageModelSAETrainingRunner(LanguageModelSAETrainingRunner):
    """`LanguageModelSAETrainingRunner` with masked regularization; same constructor and `run()`.

    Args:
        cfg: The masked runner config.
        override_dataset: As in SAELens: a dataset used instead of `cfg.dataset_path`.
        override_model: As in SAELens: a loaded model used instead of `cfg.model_name`.
        override_sae: As in SAELens: a training SAE used instead of a new one.
        init_b_dec: `default` keeps the architecture's initialisation; `mean` sets `b_dec` to the mean of the
            first training batch (needs `normalize_activations="none"`; skipped when resuming).
    """

    cfg: MaskedLanguageModelSAERunnerConfig[Any]
    activations_store: MaskedActivationsStore
    stop_request: StopRequest

    def __init__(
        self,
        cfg: MaskedLanguageModelSAERunnerConfig[Any],
        override_dataset: HfDataset | None = None,
        override_model: HookedRootModule | None = None,
        override_sae: TrainingSAE[Any] | None = None,
        *,
        init_b_dec: BDecInit = "default",
    ):
        if not isinstance(cfg, MaskedLanguageModelSAERunnerConfig):
            raise TypeError(f"cfg must be a MaskedLanguageModelSAERunnerConfig, got {type(cfg).__name__}")
        _check_b_dec_init(init_b_dec, cfg.sae.normalize_activations)
        warn_when_poorly_mixed(cfg)
        preflight(
            cfg.masking,
            model_name=cfg.model_name,
            model_class_name=cfg.model_class_name,
            hook_names=[cfg.hook_name],
            override_model=override_model,
        )
        if cfg.use_cached_activations and cfg.cached_activations_path is not None:
            check_cached_window_length(cfg.cached_activations_path, cfg.hook_name, cfg.context_size)
        self.init_b_dec = init_b_dec
        if override_sae is None and cfg.from_pretrained_path is None:
            torch.manual_seed(cfg.seed)
            override_sae = TrainingSAE.from_dict(
                TrainingSAEConfig.from_dict(cfg.get_training_sae_cfg_dict()).to_dict()
            )
        super().__init__(cfg, override_dataset, override_model, override_sae)
        if cfg.sparse_sae_step:
            self.sae = with_sparse_step(self.sae)
        self.activations_store = MaskedActivationsStore.from_store(self.activations_store)
        self.evaluator.activations_store = self.activations_store
        on_cache = cfg.use_cached_activations and cfg.cached_activations_path is not None
        self.cache_masking = read_cache_masking(cfg.cached_activations_path) if on_cache else None
        self.llm_dtype = (
            read_cache_llm_dtype(cfg.cached_activations_path) if on_cache else None
        ) or model_llm_dtype(self.model)
        self.mask_token_string = (
            None if cfg.use_cached_activations else attach_masking(self.activations_store, cfg, self.model)
        )

    def masking_record(self) -> dict[str, Any] | None:
        """What is written into the SAE's metadata: the run's masking, or the masked cache's record."""
        return self.cache_masking or store_masking_record(self.activations_store, self.mask_token_string)

    def run(self) -> TrainingSAE[Any]:
        """Train (the first batch checks the mask token's norm ratio) and save as SAELens does.

        SIGTERM, SIGINT or submitit's preemption signal stops training after the current step with a complete
        checkpoint and raises `TrainingInterrupted` naming it; a signal during the final save lets it finish.
        """
        with stop_requests() as self.stop_request:
            if self.init_b_dec == "mean" and self.cfg.resume_from_checkpoint is None:
                init_b_dec_to_mean(self.sae, self.activations_store.peek_batch())
            self.write_run_metadata(self.sae)
            sae = super().run()
        if self.stop_request.signum is not None:
            raise stopped_after_training(self.stop_request, self.cfg.output_path)
        return sae

    def run_trainer_with_interruption_handling(self, trainer: SAETrainer[Any, Any]) -> TrainingSAE[Any]:
        """Fit; on a stop signal save a complete checkpoint at the next step boundary (SAELens's own interrupt
        save writes no weights and fails)."""
        return fit_masked(trainer, self.activations_store, self.stop_request, self.cfg.checkpoint_path)

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        """SAELens's runner files of a checkpoint (store state, runner_cfg.json), then its completion marker."""
        super().save_checkpoint(checkpoint_path)
        if checkpoint_path is not None:
            mark_checkpoint_complete(checkpoint_path)

    def write_run_metadata(self, sae: TrainingSAE[Any]) -> None:
        """Write the run's masking record and LLM dtype into `sae`'s metadata (next to SAELens's own)."""
        write_masking_metadata(sae, self.masking_record())
        write_compute_metadata(sae, self.llm_dtype)

    def save_final_sae(
        self,
        sae: TrainingSAE[Any],
        output_path: str,
        log_feature_sparsity: torch.Tensor | None = None,
    ) -> None:
        """SAELens's saving, staged so that a failure leaves no partial file in `output_path`; with
        `calibrate_threshold` the staged SAE is calibrated on clean text before it is published."""
        self.write_run_metadata(sae)
        with staged_directory(output_path) as staging:
            super().save_final_sae(sae, str(staging), log_feature_sparsity)
            if self.cfg.calibrate_threshold:
                calibrate_saved_saes_at_hooks(
                    {self.cfg.hook_name: [staging]},
                    self.model,  # type: ignore[arg-type]
                    self.cfg.calibration_tokens,
                    self.cfg.context_size,
                    self.cfg.seqpos_slice,
                )


class MaskedMultiSAETrainingRunner(MultiSAETrainingRunnerSeams):
    """SAELens's `MultiSAETrainingRunner` with masked regularization: several SAEs (e.g. a k sweep, or several
    hooks) train from one masked LLM pass per batch. The mask token is measured and checked at the first hook."""

    cfg: MaskedMultiSAETrainingRunnerConfig
    activations_store: MaskedActivationsStore
    stop_request: StopRequest

    def __init__(
        self,
        cfg: MaskedMultiSAETrainingRunnerConfig,
        override_dataset: HfDataset | None = None,
        override_model: HookedRootModule | None = None,
        override_saes: dict[str, TrainingSAE[Any]] | None = None,
        *,
        init_b_dec: BDecInit = "default",
    ) -> None:
        if not isinstance(cfg, MaskedMultiSAETrainingRunnerConfig):
            raise TypeError(f"cfg must be a MaskedMultiSAETrainingRunnerConfig, got {type(cfg).__name__}")
        for sae_cfg in cfg.saes.values():
            _check_b_dec_init(init_b_dec, sae_cfg.normalize_activations)
        self.init_b_dec = init_b_dec
        warn_when_poorly_mixed(cfg)
        preflight(
            cfg.masking,
            model_name=cfg.model_name,
            model_class_name=cfg.model_class_name,
            hook_names=cfg.hook_names_per_sae.values(),
            override_model=override_model,
        )
        torch.manual_seed(cfg.seed)
        super().__init__(cfg, override_dataset, override_model, override_saes)
        if cfg.sparse_sae_step:
            self.saes = {name: with_sparse_step(sae) for name, sae in self.saes.items()}
        self.activations_store = MaskedActivationsStore.from_store(self.activations_store)
        self.evaluator.activations_store = self.activations_store
        self.mask_token_string = attach_masking(self.activations_store, cfg, self.model)

    def run(self) -> dict[str, TrainingSAE[Any]]:
        """Train every SAE from one masked pass (`init_b_dec="mean"`: each `b_dec` starts at the mean of the
        first batch at its hook) and save as SAELens does. Signals: as `MaskedLanguageModelSAETrainingRunner.run`."""
        with stop_requests() as self.stop_request:
            if self.init_b_dec == "mean" and self.cfg.resume_from_checkpoint is None:
                batch = self.activations_store.peek_multi_hook_batch()
                for name, sae in self.saes.items():
                    init_b_dec_to_mean(sae, batch[self.cfg.hook_names_per_sae[name]])
            self.write_run_metadata(self.saes)
            saes = super().run()
        if self.stop_request.signum is not None:
            raise stopped_after_training(self.stop_request, self.cfg.output_path)
        return saes

    def run_trainer_with_interruption_handling(self, trainer: MultiSAETrainer) -> dict[str, TrainingSAE[Any]]:
        """Fit; on a stop signal save a complete checkpoint at the next step boundary."""
        return fit_masked(trainer, self.activations_store, self.stop_request, self.cfg.checkpoint_path)

    def save_checkpoint(self, checkpoint_path: Path | None) -> None:
        """SAELens's runner files of a checkpoint (store state, runner_cfg.json), then its completion marker."""
        super().save_checkpoint(checkpoint_path)
        if checkpoint_path is not None:
            mark_checkpoint_complete(checkpoint_path)

    def write_run_metadata(self, saes: dict[str, TrainingSAE[Any]]) -> None:
        """Write the run's masking record and LLM dtype into every SAE's metadata (next to SAELens's own)."""
        record = store_masking_record(self.activations_store, self.mask_token_string)
        llm_dtype = model_llm_dtype(self.model)
        for sae in saes.values():
            write_masking_metadata(sae, record)
            write_compute_metadata(sae, llm_dtype)

    def save_final_saes(
        self, saes: dict[str, TrainingSAE[Any]], trainer: MultiSAETrainer, output_path: str
    ) -> None:
        """SAELens's saving into a staging folder, moved into `output_path` only once every SAE is written."""
        self.write_run_metadata(saes)
        not_calibrated = (
            {name: not_calibratable_reason(sae.cfg.architecture()) for name, sae in saes.items()}
            if self.cfg.calibrate_threshold
            else {}
        )
        for name, reason in not_calibrated.items():
            if reason is not None:
                saes[name].cfg.metadata[CALIBRATION_METADATA_KEY] = {"not_calibrated": reason}
        with staged_directory(output_path) as staging:
            super().save_final_saes(saes, trainer, str(staging))
            # SAELens records the output path in runner_cfg.json: record the real one, not the staging folder
            write_json_atomic(staging / RUNNER_CFG_FILENAME, self.cfg.to_dict())
            if self.cfg.calibrate_threshold:
                by_hook: dict[str, list[Path]] = defaultdict(list)
                for name, reason in not_calibrated.items():
                    if reason is None:
                        by_hook[self.cfg.hook_names_per_sae[name]].append(staging / name)
                calibrate_saved_saes_at_hooks(
                    dict(by_hook),
                    self.model,  # type: ignore[arg-type]
                    self.cfg.calibration_tokens,
                    self.cfg.context_size,
                    self.cfg.seqpos_slice,
                )


def _check_b_dec_init(init_b_dec: str, normalize_activations: str) -> None:
    if init_b_dec not in B_DEC_INITS:
        raise ValueError(f"init_b_dec must be one of {', '.join(B_DEC_INITS)}; got {init_b_dec!r}")
    if init_b_dec == "mean" and normalize_activations != "none":
        raise ValueError(
            f"init_b_dec='mean' sets b_dec in raw activation units; it needs sae.normalize_activations='none', "
            f"got {normalize_activations!r}"
        )
