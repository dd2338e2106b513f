"""Clean-text threshold calibration of (Matryoshka) BatchTopK SAEs.

SAELens saves a BatchTopK-family SAE as a JumpReLU SAE with one global threshold: a running average, learned during
training, of the smallest activation the batch top-k kept. For a masked run that average is taken over the *masked*
training stream, so on clean text such an SAE fires at another L0 than its baseline, and comparisons of the two
mix the effect of masking with a difference in sparsity. Calibration sets the threshold so that the mean L0 on
clean held-out text equals the training k: it is placed between the (k·N)-th and (k·N + 1)-th largest
pre-activation over N clean tokens (OpenMOSS Language-Model-SAEs' `post_processing.py` does the same).

The clean text is the embedded corpus's calibration split (`load_calibration_texts`): disjoint from the training
corpus and from every evaluation set, packed into windows with BOS as SAELens packs training text; BOS, EOS and PAD
positions are left out. The learned threshold, the calibrated one and the token count are kept in the SAE's
metadata (`threshold_calibration`); stock `SAE.load_from_disk` loads the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sae_lens import SAE
from transformer_lens import HookedTransformer

from sae_mask_plugin.calibration.settings import (
    CALIBRATION_METADATA_KEY,
    CALIBRATION_TEXT,
    DEFAULT_CALIBRATION_TOKENS,
    DEFAULT_CONTEXT_SIZE,
    CalibrationError,
    check_saved_sae,
)
from sae_mask_plugin.clean_activations import clean_token_activations
from sae_mask_plugin.embedded.corpus import load_calibration_texts
from sae_mask_plugin.files import staged_directory

ENCODE_BATCH_TOKENS = 4_096


@dataclass(frozen=True)
class ThresholdCalibration:
    """What calibration did to one SAE (stored in its metadata under `threshold_calibration`)."""

    learned_threshold: float
    calibrated_threshold: float
    target_l0: float
    calibration_tokens: int
    clean_l0_learned: float
    clean_l0_calibrated: float
    calibration_text: str = CALIBRATION_TEXT
    context_size: int = DEFAULT_CONTEXT_SIZE
    seqpos_slice: tuple[int | None, ...] = (None,)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.no_grad()
def pre_activations(sae: SAE[Any], activations: torch.Tensor) -> torch.Tensor:
    """The encoder's pre-activations [n, d_sae] of `activations` [n, d_in] (what the JumpReLU threshold gates)."""
    _, cache = sae.run_with_cache(activations.to(sae.device, sae.dtype), names_filter="hook_sae_acts_pre")
    return cache["hook_sae_acts_pre"].float()


@torch.no_grad()
def mean_l0(sae: SAE[Any], activations: torch.Tensor) -> float:
    """Mean number of active latents per token of `activations` [n, d_in]."""
    active = sum(
        int((sae.encode(batch.to(sae.device, sae.dtype)) != 0).sum())
        for batch in activations.split(ENCODE_BATCH_TOKENS)
    )
    return active / len(activations)


@torch.no_grad()
def fvu_and_l0(sae: SAE[Any], activations: torch.Tensor) -> tuple[float, float]:
    """Fraction of variance unexplained and mean L0 of `sae` on `activations` [n, d_in] (float32 sums)."""
    squared_error, active = 0.0, 0
    for batch in activations.split(ENCODE_BATCH_TOKENS):
        features = sae.encode(batch.to(sae.device, sae.dtype))
        squared_error += float((batch - sae.decode(features).float().cpu()).pow(2).sum())
        active += int((features != 0).sum())
    total_variance = float((activations - activations.mean(0)).pow(2).sum())
    return squared_error / total_variance, active / len(activations)


@torch.no_grad()
def threshold_for_l0(sae: SAE[Any], activations: torch.Tensor, target_l0: float) -> float:
    """The global threshold at which `sae` fires `target_l0` latents per token on average over `activations`
    [n, d_in]: midway between the (target·n)-th and (target·n + 1)-th largest pre-activation (never below 0,
    since a JumpReLU also needs a positive pre-activation)."""
    n_active = round(target_l0 * len(activations))
    if n_active < 1:
        raise CalibrationError(f"target L0 {target_l0} over {len(activations)} tokens keeps no activation")
    largest = torch.empty(0)
    for batch in activations.split(ENCODE_BATCH_TOKENS):
        values = torch.cat([largest, pre_activations(sae, batch).flatten()])
        largest = values.topk(min(n_active + 1, len(values))).values
    if len(largest) <= n_active:
        return 0.0
    return max(0.0, float(largest[n_active - 1] + largest[n_active]) / 2)


def calibration_activations(
    model: HookedTransformer,
    hook_name: str,
    n_tokens: int = DEFAULT_CALIBRATION_TOKENS,
    context_size: int = DEFAULT_CONTEXT_SIZE,
    seqpos_slice: Sequence[int | None] = (None,),
    show_progress: bool = True,
) -> torch.Tensor:
    """Clean activations [n_tokens, d_in] of `hook_name` on the calibration split (special tokens left out; window
    positions kept as the SAE's training run kept them, `seqpos_slice`)."""
    return clean_token_activations(
        model,
        hook_name,
        load_calibration_texts(show_progress),
        n_tokens,
        context_size,
        seqpos_slice,
        show_progress=show_progress,
    )


@torch.no_grad()
def calibrate_sae(
    sae: SAE[Any],
    activations: torch.Tensor,
    target_l0: float,
    context_size: int = DEFAULT_CONTEXT_SIZE,
    seqpos_slice: Sequence[int | None] = (None,),
) -> ThresholdCalibration:
    """Set the global JumpReLU threshold of a BatchTopK-family `sae` (in place) so that its mean L0 on the clean
    `activations` [n, d_in] is `target_l0`; record what was done in `sae.cfg.metadata`.

    The learned threshold of an SAE calibrated before is kept, so calibrating again is idempotent."""
    threshold = sae.threshold
    if not torch.all(threshold == threshold.flatten()[0]):
        raise CalibrationError("the SAE has per-latent thresholds; calibration sets one global threshold")
    previous = sae.cfg.metadata.get(CALIBRATION_METADATA_KEY) or {}
    learned = float(previous.get("learned_threshold", threshold.flatten()[0]))
    threshold.fill_(learned)
    clean_l0_learned = mean_l0(sae, activations)
    calibrated = threshold_for_l0(sae, activations, target_l0)
    threshold.fill_(calibrated)
    result = ThresholdCalibration(
        learned_threshold=learned,
        calibrated_threshold=calibrated,
        target_l0=float(target_l0),
        calibration_tokens=len(activations),
        clean_l0_learned=clean_l0_learned,
        clean_l0_calibrated=mean_l0(sae, activations),
        context_size=context_size,
        seqpos_slice=tuple(seqpos_slice),
    )
    sae.cfg.metadata[CALIBRATION_METADATA_KEY] = result.to_dict()
    return result


def calibrate_saved_sae(
    sae_dir: str | Path,
    activations: torch.Tensor,
    target_l0: float | None = None,
    context_size: int = DEFAULT_CONTEXT_SIZE,
    seqpos_slice: Sequence[int | None] = (None,),
) -> ThresholdCalibration:
    """Calibrate the SAE saved in `sae_dir` in place (its weights and `cfg.json` are replaced atomically; other
    files are kept) on clean `activations` [n, d_in] at its hook; `target_l0` defaults to the training k.
    `context_size` and `seqpos_slice` describe the windows `activations` come from (kept in the metadata)."""
    _, target = check_saved_sae(sae_dir, target_l0)
    sae = SAE.load_from_disk(str(sae_dir), device="cpu")
    result = calibrate_sae(sae, activations, target, context_size, seqpos_slice)
    with staged_directory(sae_dir) as staging:
        sae.save_model(str(staging))
    return result


def calibrate_saved_saes_at_hooks(
    sae_dirs_by_hook: dict[str, list[Path]],
    model: HookedTransformer,
    n_tokens: int = DEFAULT_CALIBRATION_TOKENS,
    context_size: int = DEFAULT_CONTEXT_SIZE,
    seqpos_slice: Sequence[int | None] = (None,),
) -> dict[Path, ThresholdCalibration]:
    """Calibrate saved SAE folders, grouped by hook: one clean-activation pass per hook serves all its SAEs."""
    results: dict[Path, ThresholdCalibration] = {}
    for hook_name, sae_dirs in sae_dirs_by_hook.items():
        for sae_dir in sae_dirs:
            check_saved_sae(sae_dir, None)
        activations = calibration_activations(model, hook_name, n_tokens, context_size, seqpos_slice)
        for sae_dir in sae_dirs:
            results[sae_dir] = calibrate_saved_sae(
                sae_dir, activations, context_size=context_size, seqpos_slice=seqpos_slice
            )
    return results
