"""Runner configs: SAELens's own configs plus one `masking: MaskingConfig` field each."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sae_lens.cache_activations_runner import CacheActivationsRunnerConfig
from sae_lens.config import LanguageModelSAERunnerConfig
from sae_lens.multi_sae_training_runner import MultiSAETrainingRunnerConfig
from sae_lens.saes.sae import T_TRAINING_SAE_CONFIG, TrainingSAEConfig

from sae_mask_plugin.calibration.settings import (
    DEFAULT_CALIBRATION_TOKENS,
    check_calibratable,
    check_calibration_tokens,
    not_calibratable_reason,
)
from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.masking.config import MaskingConfig, MaskingConfigError
from sae_mask_plugin.training.sparse_step import check_sparse_step


class MixingBufferError(SaeMaskUserError, ValueError):
    """A mixing buffer that cannot hold one training batch."""


def training_positions(context_size: int, seqpos_slice: tuple[int | None, ...]) -> int:
    """Positions per window that reach the SAE: `context_size` cut by `seqpos_slice`."""
    return len(range(context_size)[slice(*seqpos_slice)])


def check_mixing_buffer(
    context_size: int,
    seqpos_slice: tuple[int | None, ...],
    n_batches_in_buffer: int,
    train_batch_size_tokens: int,
) -> None:
    """Raise `MixingBufferError` when SAELens's mixing buffer (`n_batches_in_buffer` x the window positions kept by
    `seqpos_slice`) is smaller than one training batch: SAELens finds out only after the model has loaded."""
    positions = training_positions(context_size, seqpos_slice)
    if n_batches_in_buffer * positions < train_batch_size_tokens:
        needed = -(-train_batch_size_tokens // max(positions, 1))
        raise MixingBufferError(
            f"SAELens's mixing buffer holds n_batches_in_buffer x training positions per window = "
            f"{n_batches_in_buffer} x {positions} = {n_batches_in_buffer * positions} activations, fewer than "
            f"train_batch_size_tokens = {train_batch_size_tokens}: set n_batches_in_buffer >= {needed} (positions "
            f"per window: context_size {context_size} with seqpos_slice {tuple(seqpos_slice)})"
        )


MIN_MIXING_BATCHES = 8
"""Training batches SAELens's mixing buffer should hold, so that a batch mixes many windows' tokens: with 2 (the
SmolLM2 absorption arm's first run, 4,032 activations for batches of 2,048) each batch held the tokens of a few
dozen windows, and its TopK baselines ended below the search's plateau (docs/smollm2_study/absorption_arm/)."""


class MixingBufferWarning(UserWarning):
    """A mixing buffer of few training batches: consecutive batches hold tokens of the same few texts."""


def mixing_buffer_summary(
    runner: LanguageModelSAERunnerConfig[Any] | MultiSAETrainingRunnerConfig,
) -> str:
    """How many activations, and training batches, `runner`'s SAELens mixing buffer holds: `n_batches_in_buffer`
    x the training positions of one window (not x `store_batch_size_prompts`)."""
    positions = training_positions(runner.context_size, runner.seqpos_slice)
    held = runner.n_batches_in_buffer * positions
    return (
        f"SAELens's mixing buffer holds n_batches_in_buffer x {positions} positions = {held:,} activations, "
        f"{held / runner.train_batch_size_tokens:.1f} training batches of {runner.train_batch_size_tokens:,}"
    )


def mixing_buffer_notice(
    runner: LanguageModelSAERunnerConfig[Any] | MultiSAETrainingRunnerConfig,
) -> str | None:
    """Why `runner`'s training batches are poorly mixed (None when its buffer holds >= `MIN_MIXING_BATCHES`
    batches). SAELens serves a shuffled half of its buffer and keeps the rest: at short contexts the buffer
    (`mixing_buffer_summary`) is only a few batches, so each batch carries the tokens of a few dozen windows."""
    positions = training_positions(runner.context_size, runner.seqpos_slice)
    wanted = MIN_MIXING_BATCHES * runner.train_batch_size_tokens
    if runner.n_batches_in_buffer * positions >= wanted:
        return None
    return (
        f"{mixing_buffer_summary(runner)}: each batch mixes the tokens of only ~{runner.n_batches_in_buffer} "
        f"windows. Set n_batches_in_buffer >= {-(-wanted // positions)} (>= {MIN_MIXING_BATCHES} batches; memory "
        f"{MIN_MIXING_BATCHES} x the batch's activations)."
    )


class AuxKWindowWarning(UserWarning):
    """A run too short for its dead-latent window: AuxK never revives a dead latent."""


def auxk_window_notice(
    sae_configs: Iterable[TrainingSAEConfig],
    runner: LanguageModelSAERunnerConfig[Any] | MultiSAETrainingRunnerConfig,
) -> str | None:
    """Why AuxK cannot act in a run of `sae_configs` with `runner`'s steps (None when it can). SAELens counts a
    latent as dead only after `dead_feature_window` steps without firing, so with a window as long as the run,
    AuxK (the auxiliary loss of the TopK family that trains dead latents back to life) never starts and dead
    latents stay dead."""
    steps = runner.training_tokens // runner.train_batch_size_tokens
    architectures = sorted(
        {cfg.architecture() for cfg in sae_configs if getattr(cfg, "aux_loss_coefficient", 0) > 0}
    )
    if not architectures or runner.dead_feature_window < steps:
        return None
    return (
        f"dead_feature_window = {runner.dead_feature_window} steps is not shorter than the run "
        f"({runner.training_tokens:,} tokens = {steps} steps of {runner.train_batch_size_tokens:,}): AuxK ({', '.join(architectures)}) never revives "
        f"a dead latent. Set dead_feature_window to a small part of the run (e.g. {max(1, steps // 10)} steps)."
    )


def warn_when_auxk_cannot_act(
    sae_configs: Iterable[TrainingSAEConfig],
    runner: LanguageModelSAERunnerConfig[Any] | MultiSAETrainingRunnerConfig,
) -> None:
    """`AuxKWindowWarning` with `auxk_window_notice`'s reason, when there is one."""
    notice = auxk_window_notice(sae_configs, runner)
    if notice:
        warnings.warn(notice, AuxKWindowWarning, stacklevel=4)


def warn_when_poorly_mixed(
    runner: LanguageModelSAERunnerConfig[Any] | MultiSAETrainingRunnerConfig,
) -> None:
    """`MixingBufferWarning` with `mixing_buffer_notice`'s reason, when there is one."""
    notice = mixing_buffer_notice(runner)
    if notice:
        warnings.warn(notice, MixingBufferWarning, stacklevel=3)


def _as_masking(value: MaskingConfig | dict[str, Any] | None) -> MaskingConfig:
    """Accept a `MaskingConfig`, its `to_dict()` (configs read back from JSON) or None (the defaults)."""
    if value is None:
        return MaskingConfig()
    if isinstance(value, dict):
        return MaskingConfig.from_dict(value)
    if not isinstance(value, MaskingConfig):
        raise MaskingConfigError(f"masking must be a MaskingConfig, got {type(value).__name__}")
    return value


@dataclass
class MaskedLanguageModelSAERunnerConfig(LanguageModelSAERunnerConfig[T_TRAINING_SAE_CONFIG]):
    """A `LanguageModelSAERunnerConfig` with masked regularization: every SAELens field, plus `masking`.

    Args:
        masking (MaskingConfig): How the LLM input of the training stream is masked (p = 0: a baseline).
        calibrate_threshold (bool): After training, set each saved SAE's global threshold so that its mean L0 on
            clean held-out text is k (BatchTopK-family SAEs; the learned threshold stays in the metadata). Off by
            default, so a p = 0 run stays identical to stock SAELens.
        calibration_tokens (int): Clean tokens the calibration reads (the embedded corpus's calibration split).
        sparse_sae_step (bool): Train a TopK, BatchTopK or Matryoshka BatchTopK SAE with the sparse step
            (`training.sparse_step`: SAELens's loss and gradients on the active latents, ~4x faster on a CPU).
            Off by default, so a p = 0 run stays identical to stock SAELens.
    """

    masking: MaskingConfig = field(default_factory=MaskingConfig)
    calibrate_threshold: bool = False
    calibration_tokens: int = DEFAULT_CALIBRATION_TOKENS
    sparse_sae_step: bool = False

    def __post_init__(self) -> None:
        self.masking = _as_masking(self.masking)
        super().__post_init__()
        check_mixing_buffer(
            self.context_size, self.seqpos_slice, self.n_batches_in_buffer, self.train_batch_size_tokens
        )
        if self.sparse_sae_step:
            check_sparse_step([self.sae])
        if self.calibrate_threshold:
            check_calibratable(self.sae.architecture())
            check_calibration_tokens(self.calibration_tokens)
        warn_when_auxk_cannot_act([self.sae], self)
        if self.masking.is_active and self.use_cached_activations:
            raise MaskingConfigError(
                "use_cached_activations=True with masking.p > 0: cached activations hold one frozen draw of the mask. "
                "Cache masked activations with MaskedCacheActivationsRunner and train on them with masking.p = 0 "
                "(the cache's masking record is copied into the SAE's metadata)."
            )


@dataclass
class MaskedMultiSAETrainingRunnerConfig(MultiSAETrainingRunnerConfig):
    """SAELens's `MultiSAETrainingRunnerConfig` plus `masking`: every SAE trains from one masked LLM pass.

    Args:
        masking (MaskingConfig): Shared by all SAEs (different p values need different LLM passes).
        calibrate_threshold (bool): After training, set the global threshold of every saved BatchTopK-family SAE
            so that its mean L0 on clean held-out text is its k (the learned threshold stays in the metadata);
            SAEs of other architectures are saved as trained, with the reason in their metadata. Off by default.
        calibration_tokens (int): Clean tokens the calibration reads (the embedded corpus's calibration split).
        sparse_sae_step (bool): Train the TopK-family SAEs with the sparse step (`training.sparse_step`); SAEs of
            other architectures keep SAELens's step. Off by default.
    """

    masking: MaskingConfig = field(default_factory=MaskingConfig)
    calibrate_threshold: bool = False
    calibration_tokens: int = DEFAULT_CALIBRATION_TOKENS
    sparse_sae_step: bool = False

    def __post_init__(self) -> None:
        self.masking = _as_masking(self.masking)
        super().__post_init__()
        check_mixing_buffer(
            self.context_size, self.seqpos_slice, self.n_batches_in_buffer, self.train_batch_size_tokens
        )
        if self.sparse_sae_step:
            check_sparse_step(self.saes.values())
        if self.calibrate_threshold:
            architectures = sorted({sae.architecture() for sae in self.saes.values()})
            if all(not_calibratable_reason(architecture) for architecture in architectures):
                check_calibratable(architectures[0])  # none of the SAEs can be calibrated: say why
            check_calibration_tokens(self.calibration_tokens)
        warn_when_auxk_cannot_act(self.saes.values(), self)


@dataclass
class MaskedCacheActivationsRunnerConfig(CacheActivationsRunnerConfig):
    """SAELens's `CacheActivationsRunnerConfig` plus `masking`: the cache holds activations of masked text.

    Args:
        masking (MaskingConfig): The cache freezes one draw of the mask; p, strategy, mask token and seed are
            written next to it (`masking.json`). Schedules need a training step and are not allowed here.
    """

    masking: MaskingConfig = field(default_factory=MaskingConfig)

    def __post_init__(self) -> None:
        self.masking = _as_masking(self.masking)
        if self.masking.schedule != "constant":
            raise MaskingConfigError("a masked activation cache needs masking.schedule='constant'")
        if self.masking.loss_positions != "all":
            raise MaskingConfigError(
                "a masked activation cache stores every position; it needs masking.loss_positions='all'"
            )
        super().__post_init__()
