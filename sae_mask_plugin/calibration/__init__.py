"""Clean-text threshold calibration of BatchTopK-family SAEs (so baseline and masked SAEs compare at one L0)."""

from sae_mask_plugin.calibration.threshold import (
    CALIBRATABLE_ARCHITECTURES,
    CALIBRATION_METADATA_KEY,
    DEFAULT_CALIBRATION_TOKENS,
    CalibrationError,
    ThresholdCalibration,
    calibrate_sae,
    calibrate_saved_sae,
    calibration_activations,
    threshold_for_l0,
)

__all__ = [
    "CALIBRATABLE_ARCHITECTURES",
    "CALIBRATION_METADATA_KEY",
    "DEFAULT_CALIBRATION_TOKENS",
    "CalibrationError",
    "ThresholdCalibration",
    "calibrate_sae",
    "calibrate_saved_sae",
    "calibration_activations",
    "threshold_for_l0",
]
