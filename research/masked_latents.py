"""How many of a masked SAE's latents fire mainly on masked positions of its training stream.

With `loss_positions: all` a masked SAE also trains on the positions where the LLM saw the mask token; their
activations form a cluster of their own, and latents spent on it are capacity the clean text does not use (one
explanation of the alive-fraction cost). `masked_stream_activations` redraws a training-like stream (the SAE's
own masking settings, text packed into windows as SAELens does, the trained window positions, special tokens
left out); `masked_position_latents` counts the latents whose firings fall mostly on masked positions.

    python -m research.study_masked_latents SAE_DIR [SAE_DIR ...] --tokens 65536 --out masked_latents.json
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from sae_lens import SAE
from transformer_lens import HookedTransformer

from sae_mask_plugin.clean_activations import outside_positions, packed_windows, special_token_ids
from sae_mask_plugin.evals.common import hook_layer
from sae_mask_plugin.masking.config import MaskingConfig
from sae_mask_plugin.masking.core import TokenMasker

MAINLY = 0.5
"""A latent fires mainly on masked positions when more than this fraction of its firings are there."""


@dataclass(frozen=True)
class MaskedPositionLatents:
    """Latent counts of one SAE on a masked stream of `n_tokens` positions, `masked_fraction` of them masked."""

    n_tokens: int
    masked_fraction: float
    n_latents: int
    n_firing: int
    """Latents that fired at least once on the stream."""
    n_mainly_masked: int
    """Firing latents with more than `MAINLY` of their firings on masked positions."""
    n_only_masked: int
    """Firing latents that fired on masked positions only."""

    @property
    def mainly_masked_fraction_of_firing(self) -> float:
        return self.n_mainly_masked / self.n_firing if self.n_firing else 0.0


@torch.no_grad()
def masked_position_latents(
    sae: SAE, activations: torch.Tensor, masked: torch.Tensor, batch_size: int = 4096
) -> MaskedPositionLatents:
    """Count the latents of `sae` by where they fire on `activations` [n, d_in], `masked` [n] bool marking the
    positions where the LLM saw a masked token."""
    if activations.shape[0] != masked.shape[0] or masked.dtype != torch.bool:
        raise ValueError("activations [n, d_in] and a boolean mask [n] of the same n are needed")
    if not len(masked):
        raise ValueError("no positions to count latents on")
    on_masked = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    on_all = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    for start in range(0, len(activations), batch_size):
        rows = activations[start : start + batch_size].to(sae.device, sae.dtype)
        fires = (sae.encode(rows) > 0).cpu()  # [rows, d_sae]
        on_all += fires.sum(0)
        on_masked += fires[masked[start : start + batch_size]].sum(0)
    firing = on_all > 0
    share = on_masked.double() / on_all.clamp(min=1).double()
    return MaskedPositionLatents(
        n_tokens=len(masked),
        masked_fraction=float(masked.double().mean()),
        n_latents=sae.cfg.d_sae,
        n_firing=int(firing.sum()),
        n_mainly_masked=int((firing & (share > MAINLY)).sum()),
        n_only_masked=int((firing & (on_masked == on_all)).sum()),
    )


@torch.no_grad()
def masked_stream_activations(
    model: HookedTransformer,
    hook_name: str,
    masking: MaskingConfig,
    texts: Sequence[str],
    n_tokens: int,
    context_size: int,
    seqpos_slice: Sequence[int | None] = (None,),
    seed: int = 0,
    batch_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations [n_tokens, d_hook] (float32, CPU) of `hook_name` on `texts` packed into windows and masked as
    `masking` says (its mask token as a resolved id), at the window positions `seqpos_slice` keeps and the
    non-special original tokens; and the mask [n_tokens] (True where the LLM saw a masked token)."""
    if masking.uses_mask_token and not isinstance(masking.mask_token, int):
        raise ValueError("masking.mask_token must be a resolved token id (read_masking_metadata gives one)")
    special = special_token_ids(model)
    masker = TokenMasker(
        masking,
        vocab_size=model.cfg.d_vocab,
        mask_token_id=masking.mask_token if isinstance(masking.mask_token, int) else None,
        special_token_ids=special,
        total_tokens=n_tokens,
        seed=seed,
    )
    excluded = torch.tensor(sorted(special), dtype=torch.long)
    windows = packed_windows(model, texts, context_size, max_windows=2 * (n_tokens // (context_size - 1) + 1))
    rows: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    collected = 0
    for start in range(0, len(windows), batch_size):
        tokens = windows[start : start + batch_size]
        masked_tokens, mask = masker(tokens)
        _, cache = model.run_with_cache(
            masked_tokens.to(model.cfg.device),
            names_filter=[hook_name],
            stop_at_layer=hook_layer(hook_name) + 1,
        )
        keep = ~torch.isin(tokens, excluded) & ~outside_positions(tokens, seqpos_slice)
        rows.append(cache[hook_name][keep.to(cache[hook_name].device)].float().cpu()[: n_tokens - collected])
        masks.append(mask[keep][: n_tokens - collected])
        collected += len(rows[-1])
        if collected == n_tokens:
            return torch.cat(rows), torch.cat(masks)
    raise ValueError(f"the texts hold {collected} trained positions, fewer than the {n_tokens} asked for")


def masked_latents_table(files: Sequence[dict]) -> list[str]:
    """A markdown table of masked-position latent counts over the files `research/study_masked_latents.py` writes
    (`{"tokens", "context_size", "rows"}`): one line per arm and k (a masked SAE on its own masking, or a baseline
    on a masked SAE's stream), the counts as mean and range over its seeds."""
    arms: dict[tuple[str, int], dict[str, list]] = {}
    for row in (row for file in files for row in file["rows"]):
        masking = row["masking"]
        stream = f"p={masking['p']:g} {masking['strategy']}"
        loss = "" if masking["loss_positions"] == "all" else f" {masking['loss_positions']}-loss"
        arm = f"masked {stream}{loss}" if row["own_masking"] else f"baseline, on the stream of {stream}"
        k = int(re.search(r"-k(\d+)-", row["sae"]).group(1))  # type: ignore[union-attr]
        counts = arms.setdefault(
            (arm, k), {"seed": [], "n_firing": [], "n_mainly_masked": [], "n_only_masked": []}
        )
        counts["seed"].append(masking["seed"])
        for key in ("n_firing", "n_mainly_masked", "n_only_masked"):
            counts[key].append(row[key])

    def spread(values: list[int]) -> str:
        mean = f"{sum(values) / len(values):.0f}"
        return mean if min(values) == max(values) else f"{mean} ({min(values)}–{max(values)})"

    lines = [
        "| SAEs | k | seeds | latents firing | mainly on masked positions | only on masked positions |",
        "|---|---|---|---|---|---|",
    ]
    for (arm, k), counts in sorted(arms.items(), key=lambda item: (item[0][0].startswith("masked"), item[0])):
        seeds = ", ".join(map(str, sorted(counts["seed"])))
        lines.append(
            f"| {arm} | {k} | {seeds} | {spread(counts['n_firing'])} | {spread(counts['n_mainly_masked'])} | "
            f"{spread(counts['n_only_masked'])} |"
        )
    return lines
