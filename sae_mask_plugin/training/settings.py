"""Training settings that load nothing heavy (no torch, no SAELens), for the runners, recipes and the command line."""

from __future__ import annotations

from typing import Literal, get_args

BDecInit = Literal["default", "mean"]
"""How a runner starts the SAE's decoder bias: `default` keeps the architecture's initialisation, `mean` sets it to
the mean of the first training batch."""
B_DEC_INITS: tuple[str, ...] = get_args(BDecInit)
