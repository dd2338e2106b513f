"""Masking: the pure core (`MaskingConfig`, `mask_tokens`, `TokenMasker`) and mask-token measurement."""

from sae_mask_plugin.masking.config import (
    DEFAULT_MAX_NORM_RATIO,
    MaskingConfig,
    MaskingConfigError,
)
from sae_mask_plugin.masking.core import TokenMasker, draw_mask, mask_tokens, protected_positions

__all__ = [
    "DEFAULT_MAX_NORM_RATIO",
    "MaskingConfig",
    "MaskingConfigError",
    "TokenMasker",
    "draw_mask",
    "mask_tokens",
    "protected_positions",
]
