"""How faithful a bfloat16 LLM pass is to the float32 one: activation error at a hook and next-token loss.

Used by `scripts/bf16_fidelity.py` (which publishes `docs/bf16/fidelity.json`) and by its tests on a tiny model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> dict[str, float]:
    """Relative L2 error of `other` against `reference`, both [n, d]: per token (mean, median, 99th percentile)
    and over all tokens at once (`overall`: ||other - reference|| / ||reference||)."""
    if reference.shape != other.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(other.shape)}")
    reference, other = reference.double(), other.double()
    per_token = (other - reference).norm(dim=-1) / reference.norm(dim=-1).clamp_min(1e-12)
    return {
        "mean": float(per_token.mean()),
        "median": float(per_token.median()),
        "p99": float(per_token.quantile(0.99)),
        "overall": float((other - reference).norm() / reference.norm()),
    }


@torch.no_grad()
def mean_next_token_loss(model: HookedTransformer, windows: torch.Tensor, batch_size: int = 8) -> float:
    """Mean next-token cross-entropy of `model` over token `windows` [n, context] (full depth, float32 loss)."""
    total, count = 0.0, 0
    for batch in windows.split(batch_size):
        logits = model(batch.to(model.cfg.device), return_type="logits").float()
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten().to(logits.device), reduction="sum"
        )
        total += float(losses)
        count += batch[:, 1:].numel()
    return total / count
