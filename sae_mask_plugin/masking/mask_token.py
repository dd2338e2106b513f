"""Choosing a mask token by measurement: the hook-layer activation norm it produces, relative to clean text.

A mask token that the model treats as an attention sink (SmolLM2's `<|endoftext|>` mid-text: 25–29× the median
residual norm at layers 12–15) makes the SAE fit the outliers and die on clean text. The ratio
`median ‖a‖ at masked positions / median ‖a‖ at clean positions` of one masked forward pass predicts this, so the
default mask token of a model and hook is the candidate whose ratio is closest to 1, and every run checks the
ratio of its first batch.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from sae_lens.tokenization_and_batching import concat_and_batch_sequences
from sae_lens.util import extract_stop_at_layer_from_tlens_hook_name
from tqdm.auto import tqdm
from transformer_lens import HookedRootModule
from transformers import PreTrainedTokenizerBase

from sae_mask_plugin.masking.config import MaskingConfigError
from sae_mask_plugin.masking.core import draw_mask, protected_positions

ORDINARY_CANDIDATES: tuple[str, ...] = ("[", "_", " the", ".", "\n", " mask")
"""Ordinary strings measured besides the tokenizer's special tokens (kept when they are a single token)."""

NEAR_ONE = 1.25
"""A special token within [1/NEAR_ONE, NEAR_ONE] is preferred to an ordinary token (the paper masks with a
special token); otherwise the candidate closest to 1 wins."""

MEASURE_CHUNK = 8
"""Candidates measured per forward pass."""

MEASURE_SEQUENCES = 8
"""Contexts of real text the default mask token is measured on (at most 128 tokens each), as `sae-mask mask-tokens`
measures by default. A median over fewer is noisy: on the embedded default at `blocks.12`, `<filename>` measured
0.98x on 4 contexts but 1.01x on 8, 16 and 64 (and on the first training batch of the CPU recipes)."""


@dataclass(frozen=True)
class MaskTokenCandidate:
    """One measured candidate: `norm_ratio` = median hook norm at masked / at clean positions."""

    token_id: int
    token: str
    special: bool
    norm_ratio: float

    def describe(self) -> str:
        return f"{self.token!r} (id {self.token_id}) {self.norm_ratio:.2f}x"


_DEFAULT_CHOICES: weakref.WeakKeyDictionary[
    HookedRootModule, dict[tuple[str, float, int], MaskTokenCandidate]
] = weakref.WeakKeyDictionary()


def resolve_mask_token(mask_token: int | str, tokenizer: PreTrainedTokenizerBase) -> tuple[int, str]:
    """Resolve a mask token id or string to `(id, token string)`.

    A string must be a vocabulary entry (e.g. `<repo_name>`) or encode to exactly one token.

    Raises:
        MaskingConfigError: the id is outside the vocabulary or the string is not a single token.
    """
    vocab_size = len(tokenizer)
    if isinstance(mask_token, int):
        if not 0 <= mask_token < vocab_size:
            raise MaskingConfigError(
                f"mask token id {mask_token} is not in the vocabulary (ids 0..{vocab_size - 1})"
            )
        return mask_token, str(tokenizer.convert_ids_to_tokens(mask_token))
    token_id = tokenizer.convert_tokens_to_ids(mask_token)
    if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and 0 <= token_id < vocab_size:
        return token_id, mask_token
    ids = tokenizer.encode(mask_token, add_special_tokens=False)
    if len(ids) != 1:
        raise MaskingConfigError(
            f"mask token {mask_token!r} is not a single token of this tokenizer: it encodes to {len(ids)} tokens {ids}"
        )
    return ids[0], mask_token


def candidate_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokenizer's special and added tokens plus `ORDINARY_CANDIDATES` that are single tokens."""
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    ordinary = [
        ids[0]
        for text in ORDINARY_CANDIDATES
        if len(ids := tokenizer.encode(text, add_special_tokens=False)) == 1
    ]
    return sorted(special) + [i for i in dict.fromkeys(ordinary) if i not in special]


def norm_ratio(norms: torch.Tensor, masked: torch.Tensor, clean: torch.Tensor) -> float:
    """Median of `norms` [batch, seq] at `masked` positions over the median at `clean` positions (bool masks)."""
    if not bool(masked.any()) or not bool(clean.any()):
        return float("nan")
    return float(norms[masked].median() / norms[clean].median().clamp_min(1e-12))


def hook_norms(model: HookedRootModule, hook_name: str, tokens: torch.Tensor) -> torch.Tensor:
    """L2 norm of the activations at `hook_name`, shape [batch, seq], for `tokens` [batch, seq]."""
    _, cache = model.run_with_cache(
        tokens,
        names_filter=[hook_name],
        stop_at_layer=extract_stop_at_layer_from_tlens_hook_name(hook_name),
        prepend_bos=False,
    )
    acts = cache[hook_name]
    return acts.reshape(acts.shape[0], acts.shape[1], -1).float().norm(dim=-1)


@torch.no_grad()
def measure_mask_tokens(
    model: HookedRootModule,
    hook_name: str,
    tokens: torch.Tensor,
    candidate_ids: Sequence[int] | None = None,
    *,
    p: float = 0.3,
    protected_ids: Iterable[int] = (),
    seed: int = 0,
    show_progress: bool = False,
) -> list[MaskTokenCandidate]:
    """Measure every candidate's norm ratio on `tokens` [batch, seq] of real text, best (closest to 1) first.

    One mask (rate p, protected ids never masked) is drawn and shared by every candidate, so they are compared on
    the same positions. `show_progress` shows a progress bar over the candidates.
    """
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise ValueError("measuring mask tokens needs a model with a tokenizer")
    if candidate_ids is None:
        candidate_ids = candidate_token_ids(tokenizer)
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    protected = protected_positions(tokens, torch.tensor(sorted(set(protected_ids)), dtype=torch.long))
    generator = torch.Generator().manual_seed(seed)
    mask = (
        draw_mask((tokens.shape[0], tokens.shape[1]), p, generator=generator).to(tokens.device) & ~protected
    )
    clean = ~mask & ~protected
    groups = _group_by_embedding(model, [int(i) for i in candidate_ids])
    representatives = list(groups)
    ratios: dict[int, float] = {}
    progress = tqdm(
        total=len(representatives), desc="measuring mask tokens", unit="token", disable=not show_progress
    )
    for start in range(0, len(representatives), MEASURE_CHUNK):
        chunk = representatives[start : start + MEASURE_CHUNK]
        fill = torch.tensor(chunk, device=tokens.device).repeat_interleave(tokens.shape[0])[:, None]
        batch = torch.where(mask.repeat(len(chunk), 1), fill, tokens.repeat(len(chunk), 1))
        norms = hook_norms(model, hook_name, batch).to(mask.device).split(tokens.shape[0])
        ratios.update(
            {token_id: norm_ratio(n, mask, clean) for token_id, n in zip(chunk, norms, strict=True)}
        )
        progress.update(len(chunk))
    progress.close()
    results = [
        MaskTokenCandidate(
            token_id=member,
            token=str(tokenizer.convert_ids_to_tokens(member)),
            special=member in special,
            norm_ratio=ratios[representative],
        )
        for representative, members in groups.items()
        for member in members
    ]
    return sorted(results, key=lambda c: _distance_from_one(c.norm_ratio))


def _group_by_embedding(model: HookedRootModule, token_ids: list[int]) -> dict[int, list[int]]:
    """Candidates grouped by identical input embeddings (unused special tokens often share one), which give
    identical activations: only the first of each group needs a forward pass."""
    embedding = getattr(model, "W_E", None)
    if embedding is None:
        return {token_id: [token_id] for token_id in token_ids}
    groups: dict[bytes, list[int]] = {}
    for token_id in token_ids:
        # float() is exact for bfloat16, which numpy cannot hold.
        groups.setdefault(embedding[token_id].detach().float().cpu().numpy().tobytes(), []).append(token_id)
    return {members[0]: members for members in groups.values()}


def choose_mask_token(candidates: Sequence[MaskTokenCandidate]) -> MaskTokenCandidate:
    """The default mask token: the special candidate closest to a ratio of 1 if one lies within `NEAR_ONE`,
    else the candidate closest to 1."""
    if not candidates:
        raise ValueError("no mask-token candidates to choose from")
    ranked = sorted(candidates, key=lambda c: _distance_from_one(c.norm_ratio))
    near_special = [c for c in ranked if c.special and _distance_from_one(c.norm_ratio) <= math.log(NEAR_ONE)]
    return (near_special or ranked)[0]


def _distance_from_one(ratio: float) -> float:
    return abs(math.log(ratio)) if ratio > 0 and math.isfinite(ratio) else math.inf


def sample_token_batch(
    model: HookedRootModule,
    dataset: Iterable[dict[str, Any]],
    *,
    n_sequences: int,
    context_size: int,
    prepend_bos: bool = True,
) -> torch.Tensor:
    """The first `n_sequences` contexts of `dataset`, packed as SAELens packs them: shape [n_sequences, context].

    Rows are read with a fresh iterator (a training store's position is untouched); a `tokens`/`input_ids`
    column is used as is, a `text` column is tokenized and packed with BOS separators.
    """
    tokenizer = model.tokenizer
    bos = tokenizer.bos_token_id if tokenizer is not None and prepend_bos else None

    def token_rows() -> Iterator[torch.Tensor]:
        for row in dataset:
            if "tokens" in row or "input_ids" in row:
                yield torch.as_tensor(row.get("tokens", row.get("input_ids")), dtype=torch.long)
            else:
                yield model.to_tokens(row["text"], prepend_bos=False, truncate=False, move_to_device=False)[0]

    packed = concat_and_batch_sequences(
        token_rows(),
        context_size=context_size,
        begin_batch_token_id=bos,
        sequence_separator_token_id=bos,
    )
    sequences = [seq for seq, _ in zip(packed, range(n_sequences), strict=False)]
    if not sequences:
        raise ValueError("the dataset holds no text to measure mask tokens on")
    return torch.stack(sequences).to(next(model.parameters()).device)


def default_mask_token(
    model: HookedRootModule,
    hook_name: str,
    dataset: Iterable[dict[str, Any]],
    *,
    context_size: int,
    prepend_bos: bool,
    protected_ids: Iterable[int],
    p: float,
    seed: int,
) -> MaskTokenCandidate:
    """The mask token a run uses when none is given: `choose_mask_token` over every candidate, measured on the
    first contexts of `dataset`. Remembered per model object and hook for the life of the model."""
    key = (hook_name, p, seed)
    choices = _DEFAULT_CHOICES.setdefault(model, {})
    if key not in choices:
        tokens = sample_token_batch(
            model,
            dataset,
            n_sequences=MEASURE_SEQUENCES,
            context_size=min(context_size, 128),
            prepend_bos=prepend_bos,
        )
        candidates = measure_mask_tokens(
            model, hook_name, tokens, p=p, protected_ids=protected_ids, seed=seed
        )
        choices[key] = choose_mask_token(candidates)
    return choices[key]
