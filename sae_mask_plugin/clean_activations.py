"""LLM activations at the clean tokens of text packed into context windows, as SAELens packs its training text.

Threshold calibration, the core eval and the report's masked-latent study read a hook's activations at every
token of such windows except BOS, EOS and PAD (attention sinks), keeping the window positions an SAE trained on
(SAELens's `seqpos_slice`). The forward stops right after the hook's block (`stop_at_layer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sae_lens.tokenization_and_batching import concat_and_batch_sequences
from sae_lens.util import extract_stop_at_layer_from_tlens_hook_name
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer


def packed_windows(
    model: HookedTransformer, texts: Sequence[str], context_size: int, max_windows: int
) -> torch.Tensor:
    """Token windows [n <= max_windows, context_size] of `texts` packed in order, BOS at the start of every window
    and between texts (SAELens's packing of untokenized training text)."""
    tokenizer = model.tokenizer
    assert tokenizer is not None
    token_stream = (torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
    windows: list[torch.Tensor] = []
    for window in concat_and_batch_sequences(
        token_stream,
        context_size=context_size,
        begin_batch_token_id=tokenizer.bos_token_id,
        sequence_separator_token_id=tokenizer.bos_token_id,
    ):
        windows.append(window)
        if len(windows) == max_windows:
            break
    return torch.stack(windows)


def outside_positions(tokens: torch.Tensor, seqpos_slice: Sequence[int | None]) -> torch.Tensor:
    """Boolean mask [batch, context] of the window positions of `tokens` [batch, context] that `seqpos_slice`
    (SAELens's training option, e.g. `(2, None)`) leaves out."""
    outside = torch.ones_like(tokens, dtype=torch.bool)
    outside[:, slice(*seqpos_slice)] = False
    return outside


def special_token_ids(model: HookedTransformer) -> set[int]:
    """BOS, EOS and PAD ids of the model's tokenizer: positions evals and calibration leave out (attention sinks)."""
    tokenizer = model.tokenizer
    assert tokenizer is not None
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    return {token_id for token_id in ids if token_id is not None}


@torch.no_grad()
def clean_token_activations(
    model: HookedTransformer,
    hook_name: str,
    texts: Sequence[str],
    n_tokens: int,
    context_size: int,
    seqpos_slice: Sequence[int | None] = (None,),
    batch_size: int = 8,
    show_progress: bool = True,
) -> torch.Tensor:
    """Activations [n_tokens, d_hook] (float32, CPU) of `hook_name` at the first `n_tokens` non-special token
    positions of `texts` packed into `context_size` windows, keeping the window positions `seqpos_slice` keeps
    (SAELens's training option, e.g. `(2, None)`); raises when the texts hold too few tokens."""
    per_window = context_size - 1  # a window has at least its leading BOS
    windows = packed_windows(model, texts, context_size, max_windows=2 * (n_tokens // per_window + 1))
    excluded = torch.tensor(sorted(special_token_ids(model)), dtype=torch.long)
    stop_at_layer = extract_stop_at_layer_from_tlens_hook_name(hook_name)
    rows: list[torch.Tensor] = []
    collected = 0
    with tqdm(
        total=n_tokens, desc=f"clean activations {hook_name}", disable=not show_progress, leave=False
    ) as bar:
        for start in range(0, len(windows), batch_size):
            tokens = windows[start : start + batch_size]
            _, cache = model.run_with_cache(
                tokens.to(model.cfg.device), names_filter=[hook_name], stop_at_layer=stop_at_layer
            )
            keep = ~torch.isin(tokens, excluded) & ~outside_positions(tokens, seqpos_slice)
            acts = cache[hook_name][keep.to(cache[hook_name].device)].float().cpu()[: n_tokens - collected]
            rows.append(acts)
            collected += len(acts)
            bar.update(len(acts))
            if collected == n_tokens:
                return torch.cat(rows)
    raise ValueError(f"the texts hold {collected} non-special tokens, fewer than the {n_tokens} asked for")
