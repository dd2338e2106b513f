"""The threshold calibration a runner applies to the SAEs it has saved, before it publishes them, when its config
sets `calibrate_threshold`.

Calibration comes after training in the package's layers (`sae_mask_plugin.calibration` calibrates any saved SAE),
so `training` does not import it: the package's `__init__`, which runs before any of its modules, sets
`calibrate_saved_saes` to `calibration.threshold.calibrate_saved_saes_at_hooks` (loaded on first call). Loads nothing
heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

CalibrateSavedSaes = Callable[
    [dict[str, list[Path]], "HookedTransformer", int, int, Sequence[int | None]], None
]
"""`(sae_dirs_by_hook, model, n_tokens, context_size, seqpos_slice)`: set the threshold of each saved SAE folder, in
place, from one pass of `model` over `n_tokens` clean tokens per hook, in windows of `context_size` tokens of which
`seqpos_slice` keeps the positions the SAEs trained on."""

calibrate_saved_saes: CalibrateSavedSaes
"""The runners' threshold calibration, set when `sae_mask_plugin` is imported."""
