"""Calibration settings and checks that answer before anything heavy loads (no torch, no SAELens)."""

from __future__ import annotations

from sae_mask_plugin.errors import SaeMaskUserError

CALIBRATION_METADATA_KEY = "threshold_calibration"
CALIBRATABLE_ARCHITECTURES: tuple[str, ...] = ("batchtopk", "matryoshka_batchtopk")
DEFAULT_CALIBRATION_TOKENS = 32_768
DEFAULT_CONTEXT_SIZE = 128
CALIBRATION_TEXT = "embedded corpus calibration split"


class CalibrationError(SaeMaskUserError, ValueError):
    """An SAE or setting that threshold calibration cannot handle; raised before any model is loaded."""


def not_calibratable_reason(architecture: str) -> str | None:
    """Why an SAE of `architecture` has no global threshold to calibrate (None when it has one)."""
    if architecture in CALIBRATABLE_ARCHITECTURES:
        return None
    if architecture == "topk":
        return "topk: fires exactly k latents per token by construction"
    return f"{architecture}: its L0 is set by its own training objective, with no global threshold"


def check_calibratable(architecture: str) -> None:
    """Raise `CalibrationError` unless an SAE of `architecture` has a global threshold to calibrate."""
    reason = not_calibratable_reason(architecture)
    if reason is not None:
        raise CalibrationError(
            f"threshold calibration sets the one global threshold of {' / '.join(CALIBRATABLE_ARCHITECTURES)} "
            f"SAEs; {reason}"
        )


def check_calibration_tokens(calibration_tokens: int) -> None:
    """Raise `CalibrationError` unless `calibration_tokens` is a usable token count."""
    if calibration_tokens < 1:
        raise CalibrationError(f"calibration_tokens must be >= 1, got {calibration_tokens}")
