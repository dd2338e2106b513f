"""Models loaded in bfloat16 (Gemma-2-2B's recipe dtype): mask-token measurement works on their weights."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.masking.mask_token import measure_mask_tokens
from sae_mask_plugin.training.preflight import load_tokenizer


def test_mask_tokens_are_measured_on_a_bfloat16_model():
    tokenizer = load_tokenizer(EMBEDDED_MODEL_NAME)
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(
        n_layers=1,
        d_model=32,
        n_heads=2,
        d_head=16,
        d_mlp=64,
        n_ctx=32,
        d_vocab=len(tokenizer),
        act_fn="gelu",
        normalization_type="LN",
        dtype=torch.bfloat16,
    )
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    model.W_E.data[3] = model.W_E.data[2]  # two candidates with one embedding share one measurement
    tokens = torch.randint(10, 1000, (4, 16), generator=torch.Generator().manual_seed(0))
    candidates = measure_mask_tokens(model, "blocks.0.hook_resid_post", tokens, [2, 3, 5], p=0.3)
    ratios = {candidate.token_id: candidate.norm_ratio for candidate in candidates}
    assert set(ratios) == {2, 3, 5} and ratios[2] == ratios[3]
    assert all(ratio > 0 for ratio in ratios.values())
