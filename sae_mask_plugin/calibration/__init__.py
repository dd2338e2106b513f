"""Clean-text threshold calibration of BatchTopK-family SAEs (so baseline and masked SAEs compare at one L0).

Names load on first use, so `sae-mask calibrate --help` and the runner configs import no torch through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.calibration.settings import (
        CALIBRATABLE_ARCHITECTURES,
        CALIBRATION_METADATA_KEY,
        DEFAULT_CALIBRATION_TOKENS,
        CalibrationError,
    )
    from sae_mask_plugin.calibration.threshold import (
        ThresholdCalibration,
        calibrate_sae,
        calibrate_saved_sae,
        calibration_activations,
        fvu_and_l0,
        threshold_for_l0,
    )

_SETTINGS = [
    "CALIBRATABLE_ARCHITECTURES",
    "CALIBRATION_METADATA_KEY",
    "DEFAULT_CALIBRATION_TOKENS",
    "CalibrationError",
]
_THRESHOLD = [
    "ThresholdCalibration",
    "calibrate_sae",
    "calibrate_saved_sae",
    "calibration_activations",
    "fvu_and_l0",
    "threshold_for_l0",
]
__all__ = [
    "CALIBRATABLE_ARCHITECTURES",
    "CALIBRATION_METADATA_KEY",
    "DEFAULT_CALIBRATION_TOKENS",
    "CalibrationError",
    "ThresholdCalibration",
    "calibrate_sae",
    "calibrate_saved_sae",
    "calibration_activations",
    "fvu_and_l0",
    "threshold_for_l0",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(_SETTINGS, f"{__name__}.settings"),
        **dict.fromkeys(_THRESHOLD, f"{__name__}.threshold"),
    },
)
