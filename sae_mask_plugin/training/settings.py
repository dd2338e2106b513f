"""Training settings that load nothing heavy (no torch, no SAELens), for the runners, recipes and the command line."""

from __future__ import annotations

from typing import Literal, get_args

BDecInit = Literal["default", "mean"]
"""How a runner starts the SAE's decoder bias: `default` keeps the architecture's initialisation, `mean` sets it to
the mean of the first training batch."""
B_DEC_INITS: tuple[str, ...] = get_args(BDecInit)

MATRYOSHKA_FRACTIONS: tuple[float, ...] = (1 / 16, 1 / 4)
"""Inner Matryoshka levels as fractions of `d_sae` (the outer level is the whole SAE), for the short-run defaults
and the recipes."""
