"""LLM activations computed once per (model, hook, dataset, settings), cached on disk and shared by every SAE.

Probing evals read the hook's activation at the last token of each text (the core eval reads every clean token of
packed windows: `sae_mask_plugin.clean_activations`). The forward stops right after the hook's block
(`stop_at_layer`), texts are batched by length to waste little on padding, and each text gets the model's BOS token
in front (as SAELens does when it trains, so SAEs see activations like their training data).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from sae_mask_plugin.clean_activations import outside_positions
from sae_mask_plugin.evals.common import hook_layer, path_safe, settings_key
from sae_mask_plugin.files import atomic_file, build_lock, write_text_atomic
from sae_mask_plugin.llm_dtype import UNRECORDED_LLM_DTYPE

ACTIVATIONS_FORMAT_VERSION = 1


def tokenize_with_bos(model: HookedTransformer, texts: Sequence[str], max_seq_len: int) -> list[list[int]]:
    """Token ids of each text with BOS in front, keeping the last `max_seq_len - 1` text tokens."""
    tokenizer = model.tokenizer
    assert tokenizer is not None
    bos = tokenizer.bos_token_id
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    keep = max_seq_len - (0 if bos is None else 1)
    return [([] if bos is None else [bos]) + ids[-keep:] for ids in encoded]


class UntrainedPositions:
    """An entry of SAEBench's `ignore_tokens` set that ignores window positions instead of a token id.

    SAEBench's core eval leaves out the positions where `batch_tokens == token` for each ignored token; this
    entry answers that comparison with the positions outside `seqpos_slice`, so the core eval scores an SAE on the
    window positions it was trained on (the first text token of a window carries massive activations)."""

    def __init__(self, seqpos_slice: Sequence[int | None]):
        self.seqpos_slice = tuple(seqpos_slice)

    def __eq__(self, other: object) -> torch.Tensor | bool:  # type: ignore[override]
        if isinstance(other, torch.Tensor):
            return outside_positions(other, self.seqpos_slice)
        return isinstance(other, UntrainedPositions) and other.seqpos_slice == self.seqpos_slice

    def __hash__(self) -> int:
        return hash((UntrainedPositions, self.seqpos_slice))

    def __repr__(self) -> str:
        return f"UntrainedPositions(seqpos_slice={self.seqpos_slice})"


@torch.no_grad()
def last_token_activations(
    model: HookedTransformer,
    hook_name: str,
    texts: Sequence[str],
    max_seq_len: int = 1024,
    batch_size: int = 32,
    show_progress: bool = True,
) -> torch.Tensor:
    """Activation of `hook_name` at each text's last token: [len(texts), d_hook] float32 on the CPU."""
    token_lists = tokenize_with_bos(model, texts, max_seq_len)
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    stop_at_layer = hook_layer(hook_name) + 1
    pad_id = token_lists[0][0] if token_lists and token_lists[0] else 0
    rows: list[torch.Tensor] = [torch.empty(0)] * len(token_lists)
    for start in tqdm(
        range(0, len(order), batch_size),
        desc=f"activations {hook_name}",
        disable=not show_progress,
        leave=False,
    ):
        batch = order[start : start + batch_size]
        lengths = [len(token_lists[i]) for i in batch]
        tokens = torch.full((len(batch), max(lengths)), pad_id, dtype=torch.long)
        for row, i in enumerate(batch):
            tokens[row, : lengths[row]] = torch.tensor(token_lists[i])
        _, cache = model.run_with_cache(
            tokens.to(model.cfg.device), names_filter=[hook_name], stop_at_layer=stop_at_layer
        )
        acts = cache[hook_name]  # [batch, seq, d_hook]; right padding never reaches earlier positions
        for row, i in enumerate(batch):
            rows[i] = acts[row, lengths[row] - 1].float().cpu()
    return torch.stack(rows) if rows else torch.zeros(0, model.cfg.d_model)


class ActivationCache:
    """Last-token activations on disk under `root`, keyed by model, LLM dtype, hook, dataset and settings.

    The key holds a hash of the exact texts, so a different sample of a dataset never reuses a stale file.
    Files are written atomically; a corrupt file is recomputed. `model` is called only when something must be
    computed, so fully cached evals never load the LLM.
    """

    def __init__(
        self,
        root: str | Path,
        model_name: str,
        hook_name: str,
        max_seq_len: int,
        batch_size: int,
        model: Callable[[], HookedTransformer] | None = None,
        llm_dtype: str = UNRECORDED_LLM_DTYPE,
    ):
        self.root = Path(root)
        self.llm_dtype = llm_dtype
        self.model = model
        self.model_name = model_name
        self.hook_name = hook_name
        self.max_seq_len = max_seq_len
        self.batch_size = batch_size

    def path(self, dataset: str, texts: Sequence[str]) -> Path:
        """Cache file of `texts` (a sample of `dataset`) under the current settings."""
        key = settings_key(
            {
                "format": ACTIVATIONS_FORMAT_VERSION,
                "model": self.model_name,
                "hook": self.hook_name,
                "max_seq_len": self.max_seq_len,
                "texts": settings_key({"texts": list(texts)}),
                # float32 files keep the keys they had before the dtype was part of the key
                **({"llm_dtype": self.llm_dtype} if self.llm_dtype != UNRECORDED_LLM_DTYPE else {}),
            }
        )
        folder = self.root / "activations" / path_safe(self.model_name) / path_safe(self.hook_name)
        return folder / f"{path_safe(dataset)}-{key}.pt"

    def get(self, dataset: str, texts: Sequence[str]) -> torch.Tensor:
        """Activations of `texts` [len(texts), d_hook]: from disk, else computed with the model and stored.
        Processes filling the same file take turns (`build_lock`): the first computes, the others load it."""
        path = self.path(dataset, texts)
        cached = _load_activations(path, len(texts))
        if cached is not None:
            return cached
        with build_lock(path):
            cached = _load_activations(path, len(texts))
            return cached if cached is not None else self._compute(path, dataset, texts)

    def _compute(self, path: Path, dataset: str, texts: Sequence[str]) -> torch.Tensor:
        """Activations of `texts` computed with the model and stored at `path` (with a JSON note beside it)."""
        if self.model is None:
            raise ValueError(
                f"activations of {dataset!r} at {self.hook_name!r} are not cached and no model was given"
            )
        activations = last_token_activations(
            self.model(), self.hook_name, texts, self.max_seq_len, self.batch_size
        )
        with atomic_file(path) as temporary:
            torch.save(activations, temporary)
        write_text_atomic(
            path.with_suffix(".json"),
            json.dumps(
                {
                    "model": self.model_name,
                    "hook": self.hook_name,
                    "dataset": dataset,
                    "n_texts": len(texts),
                    "max_seq_len": self.max_seq_len,
                    "llm_dtype": self.llm_dtype,
                },
                indent=2,
            ),
        )
        return activations


def _load_activations(path: Path, n_texts: int) -> torch.Tensor | None:
    """The activations stored at `path` when the file is complete and holds `n_texts` rows, else None."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, weights_only=True)
    except (RuntimeError, OSError, EOFError):
        return None
    return cached if cached.shape[0] == n_texts else None
