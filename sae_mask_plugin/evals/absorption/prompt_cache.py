"""The LLM side of SAEBench's absorption prompts, computed once per model and hook and kept on disk.

SAEBench's `FeatureAbsorptionCalculator` runs the model on one in-context prompt per probe-positive test word,
for every SAE. Those words and prompts do not depend on the SAE (the words are the probe's, and the prompts'
in-context examples are drawn from a `random` seeded before each run), so their activations are cached here,
keyed by the prompt's text: a further SAE on the same model and hook, the other-letter null, the random-SAE
null and the second cosine-gate variant then cost SAE encodes only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sae_mask_plugin.files import atomic_file


class CachedPromptActivations:
    """Stands in for the model in `FeatureAbsorptionCalculator`: `run_with_cache(prompts, names_filter=[hook])`
    returns the hook's activations at the last `-word_token_pos` positions, shape `(batch, -word_token_pos,
    d_model)`, computed by `model` for prompts not seen before and returned in `dtype` (the SAE's: the
    calculator multiplies them with SAE-dtype tensors, so a bfloat16 model needs the cast); the rest is
    delegated to `model`."""

    def __init__(
        self,
        model: Any,
        hook_name: str,
        word_token_pos: int,
        path: str | Path,
        dtype: torch.dtype = torch.float32,
    ):
        if word_token_pos >= 0:
            raise ValueError(f"word_token_pos counts from the end and must be negative, got {word_token_pos}")
        self._model = model
        self._hook_name = hook_name
        self._word_token_pos = word_token_pos
        self._path = Path(path)
        self._dtype = dtype
        self._activations: dict[str, torch.Tensor] = (
            torch.load(self._path, weights_only=True) if self._path.is_file() else {}
        )
        self._new = 0

    def run_with_cache(
        self, prompts: list[str], names_filter: list[str]
    ) -> tuple[None, dict[str, torch.Tensor]]:
        if list(names_filter) != [self._hook_name]:
            raise ValueError(f"this cache holds {self._hook_name!r} only, not {names_filter}")
        missing = list(dict.fromkeys(p for p in prompts if p not in self._activations))
        if missing:
            _, cache = self._model.run_with_cache(missing, names_filter=[self._hook_name])
            tails = cache[self._hook_name][:, self._word_token_pos :, :].cpu()
            self._activations.update(zip(missing, tails.clone().unbind(0), strict=True))
            self._new += len(missing)
        stacked = torch.stack([self._activations[p] for p in prompts])
        return None, {self._hook_name: stacked.to(self._model.cfg.device, self._dtype)}

    def save(self) -> None:
        """Write the cache (atomically) if it gained prompts."""
        if self._new:
            with atomic_file(self._path) as temporary:
                torch.save(self._activations, temporary)
            self._new = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)
