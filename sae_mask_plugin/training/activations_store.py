"""`MaskedActivationsStore`: SAELens's `ActivationsStore` with the LLM input of the training stream masked.

Only the training stream is masked: `get_raw_llm_batch` / `get_filtered_llm_batch` (single hook) and the
multi-hook batch draw. `get_batch_tokens` is left alone because SAELens's in-training evals (`run_evals`) read
clean text through it, and masking it would mask those evals too. The stream returns the *original* token ids
next to the activations, so `exclude_special_tokens` drops what the text was (BOS), never a masked position whose
mask token happens to be special; `loss_positions` then selects masked/unmasked positions explicitly.

Its checkpoint state makes a resumed run train on exactly the batches the uninterrupted run would have: besides
SAELens's dataset position it saves the number of context windows drawn (SAELens's row count repeats windows of a
text that spans several), the rows waiting in the mixing buffer (`MixingBuffer`, SAELens's shuffling with its state
in fields) with the global torch generator that shuffles them, and the masking generator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from sae_lens.training.prefetch import PrefetchingIterator
from safetensors.torch import load_file

from sae_mask_plugin._saelens import ActivationsStoreSeams
from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.masking.config import LossPositions
from sae_mask_plugin.masking.core import TokenMasker
from sae_mask_plugin.masking.mask_token import measure_mask_tokens, norm_ratio
from sae_mask_plugin.training.mixing_buffer import MixingBuffer

logger = logging.getLogger(__name__)


class MaskTokenNormError(SaeMaskUserError, RuntimeError):
    """The first masked batch shows masked positions with outlier activation norms (the SAE would go dead)."""


class MaskedActivationsStore(ActivationsStoreSeams):
    """An `ActivationsStore` whose training stream feeds the LLM masked tokens.

    Build it like the stock store (e.g. `from_config`) or adopt an existing one with `from_store`, then give it a
    masker with `attach_masker`. Without a masker it behaves exactly like `ActivationsStore`.
    """

    masker: TokenMasker | None = None
    loss_positions: LossPositions = "all"
    max_norm_ratio: float | None = None
    first_batch_norm_ratio: float | None = None
    """Median hook norm at masked / clean positions of the first batch with masked positions (None before)."""
    n_sequences_drawn: int = 0
    """Context windows drawn from the dataset so far (every epoch counted)."""
    mixing_buffer: MixingBuffer | None = None
    """The training stream's mixing buffer (`get_mixing_buffer`; None before it is first asked for)."""
    training_stream: Iterator[Any] | None = None
    """What the trainer reads (the runners set it): a prefetcher is paused while the buffer is checkpointed."""

    def attach_masker(
        self,
        masker: TokenMasker,
        *,
        loss_positions: LossPositions = "all",
        max_norm_ratio: float | None = None,
    ) -> None:
        """Mask the training stream with `masker`; train on `loss_positions`; stop on the first batch when the
        masked/clean norm ratio exceeds `max_norm_ratio` (None: no check)."""
        if self.cached_activation_dataset is not None:
            raise ValueError(
                "cached activations cannot be masked: build a masked cache with MaskedCacheActivationsRunner"
            )
        self.masker = masker
        self.loss_positions = loss_positions
        self.max_norm_ratio = max_norm_ratio

    @property
    def is_masking(self) -> bool:
        return self.masker is not None and self.cached_activation_dataset is None

    def _draw_masked_tokens(
        self, raise_on_epoch_end: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Next training batch: (tokens, masked_tokens, mask), each [batch, context]."""
        assert self.masker is not None
        tokens = self.get_batch_tokens(raise_at_epoch_end=raise_on_epoch_end)
        masked, mask = self.masker(tokens)
        return tokens, masked, mask

    def _flat_positions(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply `seqpos_slice` to tokens/mask [batch, context] and flatten to [batch * context']."""
        positions = slice(*self.seqpos_slice)
        return (
            tokens[:, positions].reshape(-1).to(self.device),
            mask[:, positions].reshape(-1).to(self.device),
        )

    def _keep(self, token_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Boolean [n]: the positions the SAE trains on (loss positions, minus excluded original tokens)."""
        if self.loss_positions == "unmasked":
            keep = ~mask
        elif self.loss_positions == "masked":
            keep = mask.clone()
        else:
            keep = torch.ones_like(mask)
        if self.exclude_special_tokens is not None:
            keep &= ~torch.isin(token_ids, self.exclude_special_tokens)
        return keep

    @torch.no_grad()
    def get_masked_llm_batch(
        self, raise_on_epoch_end: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One masked LLM batch of the training stream.

        Returns:
            (activations [batch * context, d_in], original token ids [batch * context],
            mask [batch * context] bool, True where the LLM saw a replaced token).
        """
        tokens, masked, mask = self._draw_masked_tokens(raise_on_epoch_end)
        activations = self.get_activations(masked).to(self.device)
        self._check_first_batch(activations, tokens, mask)
        token_ids, flat_mask = self._flat_positions(tokens, mask)
        return activations.reshape(-1, self.d_in), token_ids, flat_mask

    def get_raw_llm_batch(self, raise_on_epoch_end: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """As `ActivationsStore.get_raw_llm_batch`, with the LLM fed masked tokens; token ids are the originals."""
        if not self.is_masking:
            return super().get_raw_llm_batch(raise_on_epoch_end=raise_on_epoch_end)
        activations, token_ids, _ = self.get_masked_llm_batch(raise_on_epoch_end)
        return activations, token_ids

    def get_filtered_llm_batch(self, raise_on_epoch_end: bool = False) -> torch.Tensor:
        """Masked activations at the loss positions, without excluded (original) special tokens."""
        if not self.is_masking:
            return super().get_filtered_llm_batch(raise_on_epoch_end=raise_on_epoch_end)
        activations, token_ids, mask = self.get_masked_llm_batch(raise_on_epoch_end)
        return activations[self._keep(token_ids, mask)]

    @torch.no_grad()
    def get_filtered_multi_hook_llm_batch(self, raise_on_epoch_end: bool = False) -> dict[str, torch.Tensor]:
        """Multi-hook training batch: one masked LLM pass feeds every hook; same filter for all hooks."""
        if not self.is_masking:
            return super().get_filtered_multi_hook_llm_batch(raise_on_epoch_end)
        tokens, masked, mask = self._draw_masked_tokens(raise_on_epoch_end)
        activations = self.get_multi_hook_activations(masked)
        self._check_first_batch(activations[self.hook_name], tokens, mask)
        keep = self._keep(*self._flat_positions(tokens, mask))
        return {
            hook: acts.to(self.device).reshape(-1, acts.shape[-1])[keep] for hook, acts in activations.items()
        }

    def _check_first_batch(self, activations: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        """Measure the masked/clean norm ratio on the first batch with masked positions; stop when it is too high.

        Args:
            activations: [batch, context', d_in] at this store's hook (after `seqpos_slice`).
            tokens: original tokens [batch, context]; mask: [batch, context] bool.
        """
        if self.first_batch_norm_ratio is not None or not bool(mask.any()):
            return
        assert self.masker is not None
        positions = slice(*self.seqpos_slice)
        protected = self.masker.protected(tokens)[:, positions].to(activations.device)
        sliced_mask = mask[:, positions].to(activations.device)
        norms = activations.reshape(*activations.shape[:2], -1).float().norm(dim=-1)
        ratio = norm_ratio(norms, sliced_mask, ~sliced_mask & ~protected)
        self.first_batch_norm_ratio = ratio
        if (
            self.max_norm_ratio is None
            or self.loss_positions == "unmasked"
            or not ratio > self.max_norm_ratio
        ):
            return
        raise MaskTokenNormError(self._norm_error_message(ratio, tokens))

    def _norm_error_message(self, ratio: float, tokens: torch.Tensor) -> str:
        assert self.masker is not None
        cfg = self.masker.cfg
        what = (
            f"mask token id {self.masker.mask_token_id}"
            if cfg.uses_mask_token
            else f"strategy {cfg.strategy!r}"
        )
        message = (
            f"Masked positions ({what}) have a median activation norm {ratio:.1f}x that of clean positions at "
            f"{self.hook_name} on the first batch (threshold masking.max_norm_ratio = {self.max_norm_ratio}). "
            "An SAE trained on such outliers fits them and goes dead on clean text."
        )
        if cfg.uses_mask_token:
            candidates = measure_mask_tokens(
                self.model,
                self.hook_name,
                tokens,
                p=max(self.masker.current_p, 0.05),
                protected_ids=self.masker.protected_ids.tolist(),
                seed=self.masker.seed,
            )
            better = [c.describe() for c in candidates if c.norm_ratio <= self.max_norm_ratio][:5]
            if better:
                message += f" Better mask tokens on this batch: {', '.join(better)}."
        return (
            message + " Choose another masking.mask_token (None measures the best one), set "
            "masking.loss_positions='unmasked', or disable the check with masking.max_norm_ratio=None."
        )

    def get_mixing_buffer(self) -> MixingBuffer:
        """The training stream's mixing buffer, built on the first call (nothing is drawn until it is read): rows
        [n, d_in], or for a multi-hook store rows packed over its hooks [n, sum of the hooks' d_in], as SAELens's
        multi-hook buffer packs them. The store feeds one training stream: every later call returns it."""
        if self.mixing_buffer is None:
            rows = self.filtered_activations() if self.hook_widths is None else self._packed_activations()
            self.mixing_buffer = MixingBuffer(
                buffer_size=self.n_batches_in_buffer * self.training_context_size,
                batch_size=self.train_batch_size_tokens,
                activations=rows,
                mix_fraction=self.activations_mixing_fraction,
            )
        return self.mixing_buffer

    def _packed_activations(self) -> Iterator[torch.Tensor]:
        """The multi-hook batches with their hooks side by side [n, sum of d_in], in `hook_widths` order."""
        hooks = list(self._multi_hook_widths())
        for activations in self.filtered_multi_hook_activations():
            yield torch.cat([activations[hook] for hook in hooks], dim=1)

    def _multi_hook_widths(self) -> dict[str, int]:
        if self.hook_widths is None:
            raise RuntimeError(
                "a multi-hook stream needs a store constructed via ActivationsStore.from_config_multi_hook"
            )
        return self.hook_widths

    def _split(self, packed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split rows packed over hooks [n, sum of d_in] into {hook: [n, d_in of the hook]}."""
        widths = self._multi_hook_widths()
        return dict(zip(widths, packed.split(list(widths.values()), dim=1), strict=True))

    def get_data_loader(self) -> MixingBuffer:
        """SAELens's stream of mixed batches [train_batch_size_tokens, d_in], from the store's mixing buffer."""
        if self.hook_widths is not None:
            raise RuntimeError("a multi-hook store streams through get_multi_hook_data_loader")
        return self.get_mixing_buffer()

    def get_multi_hook_data_loader(self) -> Iterator[dict[str, torch.Tensor]]:
        """SAELens's multi-hook stream of mixed batches {hook: [train_batch_size_tokens, d_in of the hook]}, one
        shuffle shared by all hooks, from the store's mixing buffer."""
        self._multi_hook_widths()
        return map(self._split, self.get_mixing_buffer())

    def peek_batch(self) -> torch.Tensor:
        """The next training batch [train_batch_size_tokens, d_in], left in place for the next `next()` call."""
        return self.get_mixing_buffer().peek()

    def peek_multi_hook_batch(self) -> dict[str, torch.Tensor]:
        """The next multi-hook batch {hook: [train_batch_size_tokens, d_in]}, left at the head of the stream that
        `get_multi_hook_data_loader()` returns."""
        return self._split(self.get_mixing_buffer().peek())

    def iterate_context_windows(self) -> Iterator[torch.Tensor]:
        """SAELens's context windows, counted in `n_sequences_drawn`."""
        for sequence in super().iterate_context_windows():
            self.n_sequences_drawn += 1
            yield sequence

    def _skip_sequences(self, count: int) -> None:
        """Draw and drop context windows until `count` have been drawn, starting new epochs as SAELens does."""
        while self.n_sequences_drawn < count:
            try:
                next(self.iterable_sequences)
            except StopIteration:
                self.iterable_sequences = self.iterate_context_windows()

    def _mixing_buffer_state(self) -> dict[str, torch.Tensor]:
        """The rows in the mixing buffer (unserved in serving order, kept for mixing) and the global torch
        generator state that will shuffle them; empty before the buffer's first fill. A prefetching trainer's
        producer is paused while they are read (the batches it has prefetched are not in the buffer)."""
        buffer = self.mixing_buffer
        stream = self.training_stream
        with stream.paused() if isinstance(stream, PrefetchingIterator) else nullcontext():
            if buffer is None or buffer.unserved is None or buffer.storage is None:
                return {}
            return {
                _UNSERVED_KEY: buffer.unserved.clone(),
                _KEPT_KEY: buffer.storage.clone(),
                _TORCH_RNG_KEY: torch.get_rng_state(),
            }

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The stock state, the windows drawn, the mixing buffer and the masker's state (generator, schedule
        position, unigram counts)."""
        state = super().state_dict()
        state[_SEQUENCES_KEY] = torch.tensor(self.n_sequences_drawn)
        if self.cached_activation_dataset is not None:
            state[_CACHE_ROW_KEY] = torch.tensor(self.current_row_idx)
        state.update(self._mixing_buffer_state())
        if self.masker is not None:
            state.update(self.masker.state_dict())
        return state

    def load(self, file_path: str) -> None:
        """Restore the dataset position, the mixing buffer and the masker's state."""
        state: dict[str, Any] = load_file(file_path)
        if _SEQUENCES_KEY in state:
            self._skip_sequences(int(state[_SEQUENCES_KEY]))
        else:  # a checkpoint of stock SAELens
            super().load(file_path)
        if _CACHE_ROW_KEY in state:
            self.current_row_idx = int(state[_CACHE_ROW_KEY])
        if _KEPT_KEY in state:
            self.get_mixing_buffer().restore(unserved=state[_UNSERVED_KEY], kept=state[_KEPT_KEY])
            torch.set_rng_state(state[_TORCH_RNG_KEY])
        if self.masker is None:
            return
        try:
            self.masker.load_state_dict(state)
        except KeyError:
            raise ValueError(
                f"{Path(file_path)} holds no masking state: the checkpoint comes from an unmasked run"
            ) from None


_SEQUENCES_KEY = "n_sequences_drawn"
_CACHE_ROW_KEY = "cached_activations_row"
_UNSERVED_KEY = "mixing_buffer_unserved"
_KEPT_KEY = "mixing_buffer_kept"
_TORCH_RNG_KEY = "torch_rng_state"
