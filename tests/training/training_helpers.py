"""Helpers of the training tests: settings for runs on the tiny model (`tiny_transformer`) and a recorder of what
the LLM is fed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from tiny_transformer import TINY_D_MODEL, TINY_HOOK
from transformer_lens import HookedTransformer

REPO_NAME_ID = 3  # "<repo_name>": a special token that never occurs in the corpus text


def tiny_sae(architecture: str, **extra: Any) -> dict[str, Any]:
    """SAE settings for the tiny model, valid for `architecture`."""
    sae: dict[str, Any] = {"d_in": TINY_D_MODEL, "d_sae": 64, **extra}
    if architecture in ("topk", "batchtopk", "matryoshka_batchtopk"):
        sae["k"] = 4
    if architecture == "matryoshka_batchtopk":
        sae["matryoshka_widths"] = [16, 64]
    return sae


def tiny_runner_settings(tmp_path, **overrides: Any) -> dict[str, Any]:
    """Runner settings of a ~2 k-token run on the tiny model."""
    return {
        "model_name": "tiny",
        "hook_name": TINY_HOOK,
        "context_size": 32,
        "store_batch_size_prompts": 4,
        "n_batches_in_buffer": 8,
        "train_batch_size_tokens": 128,
        "training_tokens": 2048,
        "output_path": str(tmp_path / "sae"),
        "checkpoint_path": str(tmp_path / "checkpoints"),
        **overrides,
    }


@contextmanager
def recorded_inputs(model: HookedTransformer) -> Iterator[list[torch.Tensor]]:
    """Record every token batch the model's embedding receives."""
    seen: list[torch.Tensor] = []
    handle = model.embed.register_forward_pre_hook(
        lambda _module, args: seen.append(args[0].detach().clone())
    )
    try:
        yield seen
    finally:
        handle.remove()
