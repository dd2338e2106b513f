"""Threshold-calibration settings and checks that answer before anything heavy loads (no torch, no SAELens).

The runner configs check `calibrate_threshold` with them where they are built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.files import SAE_CFG_FILENAME
from sae_mask_plugin.sae_metadata import saved_training_architecture, saved_training_k

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


def read_saved_cfg(sae_dir: str | Path) -> dict[str, Any]:
    """The `cfg.json` of a saved SAE folder, with a clear error when it is not one."""
    path = Path(sae_dir) / SAE_CFG_FILENAME
    if not path.is_file():
        raise CalibrationError(f"{str(sae_dir)!r} is not a saved SAE: it has no {SAE_CFG_FILENAME}")
    return json.loads(path.read_text())


def check_saved_sae(sae_dir: str | Path, target_l0: float | None) -> tuple[dict[str, Any], float]:
    """Check that the SAE in `sae_dir` can be calibrated; return its `cfg.json` and the target L0 (default: k)."""
    cfg = read_saved_cfg(sae_dir)
    check_calibratable(saved_training_architecture(cfg))
    target = target_l0 if target_l0 is not None else saved_training_k(cfg)
    if target is None:
        raise CalibrationError(f"{str(sae_dir)!r} records no training k: give the target L0")
    if not 0 < target <= int(cfg["d_sae"]):
        raise CalibrationError(f"target L0 must be in (0, d_sae = {cfg['d_sae']}], got {target}")
    return cfg, float(target)
