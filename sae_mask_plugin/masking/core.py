"""The pure masking core: draw masks for token batches from a seeded generator (torch only, no model, no SAELens).

Every random draw has a size fixed by the batch shape, so the generator's state after a batch depends only on the
shapes it has seen: the same seed gives the same masks, and a saved generator state resumes the exact sequence.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from sae_mask_plugin.masking.config import MaskingConfig, MaskingConfigError, MaskStrategy

_RNG_STATE_KEY = "masking_rng_state"
_TOKENS_SEEN_KEY = "masking_tokens_seen"
_UNIGRAM_COUNTS_KEY = "masking_unigram_counts"


def protected_positions(
    tokens: torch.Tensor,
    protected_ids: torch.Tensor | None = None,
    protect_prefix: int = 0,
) -> torch.Tensor:
    """Positions that are never masked.

    Args:
        tokens: Token ids, shape [batch, seq].
        protected_ids: Token ids never masked (BOS, PAD, separators...), shape [n]; None for none.
        protect_prefix: The first `protect_prefix` positions of each row are protected.

    Returns:
        Boolean tensor of shape [batch, seq], True where the position is protected.
    """
    protected = torch.zeros_like(tokens, dtype=torch.bool)
    if protected_ids is not None and protected_ids.numel() > 0:
        protected |= torch.isin(tokens, protected_ids.to(tokens.device))
    if protect_prefix > 0:
        protected[:, :protect_prefix] = True
    return protected


def draw_mask(
    shape: tuple[int, int],
    p: float,
    *,
    strategy: MaskStrategy = "token",
    span_mean_length: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw which positions are masked, before protection, on the CPU.

    Independent strategies mask each position with probability p. `span` runs a two-state Markov chain started
    in its stationary distribution: masked runs are geometric with mean L = `span_mean_length`, unmasked runs
    geometric with mean L (1 - p) / p, so every position is masked with probability exactly p.

    Args:
        shape: (batch, seq).
        p: Masking probability in [0, 1).
        strategy: One of the `MaskingConfig` strategies.
        span_mean_length: Mean span length for `span`.
        generator: CPU generator the draws come from.

    Returns:
        Boolean tensor of shape [batch, seq].
    """
    uniform = torch.rand(shape, generator=generator)
    if strategy != "span":
        return uniform < p
    stay_masked = 1.0 - 1.0 / span_mean_length
    start_span = p / (span_mean_length * (1.0 - p))
    mask = torch.empty(shape, dtype=torch.bool)
    state = uniform[:, 0] < p
    mask[:, 0] = state
    for position in range(1, shape[1]):
        column = uniform[:, position]
        state = torch.where(state, column < stay_masked, column < start_span)
        mask[:, position] = state
    return mask


def mask_tokens(
    tokens: torch.Tensor,
    p: float,
    *,
    strategy: MaskStrategy = "token",
    mask_token_id: int | None = None,
    span_mean_length: float = 3.0,
    protected: torch.Tensor | None = None,
    replacement_ids: torch.Tensor | None = None,
    replacement_weights: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask a batch of tokens; the input is never modified.

    Args:
        tokens: Integer token ids, shape [batch, seq].
        p: Masking probability per unprotected position, in [0, 1).
        strategy: `token` and `span` write `mask_token_id`; `random` draws from `replacement_ids` uniformly;
            `unigram` draws from `replacement_ids` with probabilities proportional to `replacement_weights`.
        mask_token_id: The mask token, required by `token` and `span`.
        span_mean_length: Mean span length for `span`.
        protected: Boolean [batch, seq], True where a position must not be masked; None protects nothing.
        replacement_ids: Candidate replacement ids for `random`/`unigram`, shape [n].
        replacement_weights: Non-negative weights of `replacement_ids` for `unigram`, shape [n].
        generator: CPU generator all draws come from.

    Returns:
        (masked_tokens, mask): masked_tokens has the shape, dtype and device of `tokens`; mask is a boolean
        [batch, seq] tensor on the same device, True where the token was replaced.
    """
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, seq], got {tuple(tokens.shape)}")
    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    shape = (tokens.shape[0], tokens.shape[1])
    mask = draw_mask(shape, p, strategy=strategy, span_mean_length=span_mean_length, generator=generator)
    mask = mask.to(tokens.device)
    if protected is not None:
        mask &= ~protected.to(tokens.device)

    if strategy in ("token", "span"):
        if mask_token_id is None:
            raise ValueError(f"strategy {strategy!r} needs a mask_token_id")
        replacement = torch.full_like(tokens, mask_token_id)
    else:
        if replacement_ids is None or replacement_ids.numel() == 0:
            raise ValueError(f"strategy {strategy!r} needs non-empty replacement_ids")
        n_draws = tokens.numel()
        if strategy == "random" or replacement_weights is None or not bool((replacement_weights > 0).any()):
            index = torch.randint(0, replacement_ids.numel(), (n_draws,), generator=generator)
        else:
            index = torch.multinomial(
                replacement_weights.double(), n_draws, replacement=True, generator=generator
            )
        replacement = (
            replacement_ids[index].reshape(tokens.shape).to(device=tokens.device, dtype=tokens.dtype)
        )
    return torch.where(mask, replacement, tokens), mask


class TokenMasker:
    """Masks a stream of token batches as a `MaskingConfig` says, and carries the state resume needs.

    The state (generator state, tokens seen for the p schedule, unigram counts) goes through `state_dict` /
    `load_state_dict`, so a restored masker continues with exactly the masks the original would have drawn.

    Args:
        cfg: The masking settings.
        vocab_size: Number of token ids of the model.
        mask_token_id: The resolved mask token (required for `token` and `span`).
        special_token_ids: The tokenizer's structural special ids, protected when `cfg.protect_special_tokens`.
        total_tokens: Length of the run in tokens, the default horizon of the p schedule.
        seed: Seed of the masking generator.
    """

    def __init__(
        self,
        cfg: MaskingConfig,
        *,
        vocab_size: int,
        mask_token_id: int | None,
        special_token_ids: Iterable[int] = (),
        total_tokens: int,
        seed: int,
    ) -> None:
        if cfg.uses_mask_token and cfg.is_active and mask_token_id is None:
            raise MaskingConfigError(f"masking strategy {cfg.strategy!r} needs a resolved mask token id")
        if mask_token_id is not None and not 0 <= mask_token_id < vocab_size:
            raise MaskingConfigError(
                f"mask token id {mask_token_id} is outside the vocabulary [0, {vocab_size})"
            )
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.mask_token_id = mask_token_id
        self.total_tokens = total_tokens
        self.seed = seed
        protected = set(cfg.protected_token_ids) | (
            set(special_token_ids) if cfg.protect_special_tokens else set()
        )
        self.protected_ids = torch.tensor(sorted(protected), dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)
        self.tokens_seen = 0
        self.replacement_ids: torch.Tensor | None = None
        self.unigram_counts: torch.Tensor | None = None
        if cfg.strategy in ("random", "unigram"):
            all_ids = torch.arange(vocab_size)
            self.replacement_ids = all_ids[~torch.isin(all_ids, self.protected_ids)]
        if cfg.strategy == "unigram":
            self.unigram_counts = torch.zeros(vocab_size, dtype=torch.float64)

    @property
    def current_p(self) -> float:
        """The masking probability the next batch is drawn with."""
        return self.cfg.p_at(self.tokens_seen, self.total_tokens)

    def protected(self, tokens: torch.Tensor) -> torch.Tensor:
        """Boolean [batch, seq]: positions of `tokens` [batch, seq] that are never masked."""
        return protected_positions(tokens, self.protected_ids, self.cfg.protect_prefix)

    def __call__(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask one batch `tokens` [batch, seq]; returns (masked_tokens [batch, seq], mask [batch, seq] bool)."""
        p = self.current_p
        self.tokens_seen += tokens.numel()
        protected = self.protected(tokens)
        if p == 0.0:
            return tokens.clone(), torch.zeros_like(tokens, dtype=torch.bool)
        weights = None
        if self.unigram_counts is not None and self.replacement_ids is not None:
            seen = tokens[~protected].reshape(-1).cpu()
            self.unigram_counts += torch.bincount(seen, minlength=self.vocab_size)[: self.vocab_size].double()
            weights = self.unigram_counts[self.replacement_ids]
        return mask_tokens(
            tokens,
            p,
            strategy=self.cfg.strategy,
            mask_token_id=self.mask_token_id,
            span_mean_length=self.cfg.span_mean_length,
            protected=protected,
            replacement_ids=self.replacement_ids,
            replacement_weights=weights,
            generator=self.generator,
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors that restore this masker's position in its mask sequence."""
        state = {
            _RNG_STATE_KEY: self.generator.get_state(),
            _TOKENS_SEEN_KEY: torch.tensor(self.tokens_seen, dtype=torch.long),
        }
        if self.unigram_counts is not None:
            state[_UNIGRAM_COUNTS_KEY] = self.unigram_counts.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict`; raises KeyError when it holds no masking state."""
        self.generator.set_state(state[_RNG_STATE_KEY].to(torch.uint8).cpu())
        self.tokens_seen = int(state[_TOKENS_SEEN_KEY].item())
        if self.unigram_counts is not None:
            self.unigram_counts = state[_UNIGRAM_COUNTS_KEY].to(torch.float64).clone()
