"""The tiny recipe the slow sweep tests run on the real embedded SmolLM2: block 1, 8,192 tokens, BatchTopK 256."""

from __future__ import annotations

from typing import Any

TINY_RUNNER: dict[str, Any] = {
    "context_size": 64,
    "store_batch_size_prompts": 8,
    "n_batches_in_buffer": 16,
    "train_batch_size_tokens": 1024,
    "lr": 0.004,
    "exclude_special_tokens": True,
}


def tiny_recipe_dict(runner: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The tiny recipe as a mapping (`Recipe.from_dict` or YAML): `runner` adds runner settings to
    `TINY_RUNNER`, `changes` replace top-level keys."""
    return {
        "name": "tiny",
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": "blocks.1.hook_resid_post",
        "d_in": 576,
        "training_tokens": 8192,
        "runner": {**TINY_RUNNER, **(runner or {})},
        "masking": {"mask_token": "<repo_name>"},
        "grid": {"architecture": "batchtopk", "d_sae": 256, "k": 16, "p": [0.0, 0.3]},
        **changes,
    }
