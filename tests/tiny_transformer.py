"""The tiny transformer of the fast tests: SmolLM2's real tokenizer over a 2-layer, 32-wide model (random weights)."""

from __future__ import annotations

from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

TINY_HOOK = "blocks.0.hook_resid_post"
TINY_D_MODEL = 32


def build_tiny_model(tokenizer: Any) -> HookedTransformer:
    """A 2-layer, 32-wide transformer over `tokenizer`'s vocabulary (random weights, seeded: always the same)."""
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(
        n_layers=2,
        d_model=TINY_D_MODEL,
        n_heads=2,
        d_head=16,
        d_mlp=64,
        n_ctx=64,
        d_vocab=len(tokenizer),
        act_fn="gelu",
        normalization_type="LN",
    )
    return HookedTransformer(cfg, tokenizer=tokenizer)
