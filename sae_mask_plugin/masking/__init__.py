"""Masking: the pure core (`MaskingConfig`, `mask_tokens`, `TokenMasker`) and mask-token measurement.

Names load on first use, so `masking.config` and the `mask-tokens` command line import no torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.masking.config import DEFAULT_MAX_NORM_RATIO, MaskingConfig, MaskingConfigError
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ["DEFAULT_MAX_NORM_RATIO", "MaskingConfig", "MaskingConfigError"], f"{__name__}.config"
        ),
        **dict.fromkeys(
            ["TokenMasker", "draw_mask", "mask_tokens", "protected_positions"], f"{__name__}.core"
        ),
    },
)
