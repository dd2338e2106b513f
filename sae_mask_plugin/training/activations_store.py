"""`MaskedActivationsStore`: SAELens's `ActivationsStore` with the LLM input of the training stream masked.

Only the training stream is masked: `get_raw_llm_batch` / `get_filtered_llm_batch` (single hook) and the
multi-hook batch draw. `get_batch_tokens` is left alone because SAELens's in-training evals (`run_evals`) read
clean text through it, and masking it would mask those evals too. The stream returns the *original* token ids
next to the activations, so `exclude_special_tokens` drops what the text was (BOS), never a masked position whose
mask token happens to be special; `loss_positions` then selects masked/unmasked positions explicitly.

Its checkpoint state makes a resumed run train on exactly the batches the uninterrupted run would have: besides
SAELens's dataset position it saves the number of context windows drawn (SAELens's row count repeats windows of a
text that spans several), the rows waiting in SAELens's mixing buffer with the global torch generator that shuffles
them, and the masking generator.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import GeneratorType
from typing import Any

import torch
from sae_lens.training.activations_store import ActivationsStore
from sae_lens.training.mixing_buffer import mixing_buffer
from safetensors.torch import load_file

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.masking.config import LossPositions
from sae_mask_plugin.masking.core import TokenMasker
from sae_mask_plugin.masking.mask_token import measure_mask_tokens, norm_ratio

logger = logging.getLogger(__name__)

_Split = Callable[[torch.Tensor], dict[str, torch.Tensor]]
"""Splits rows packed over hooks into {hook: rows}."""


class MaskTokenNormError(SaeMaskUserError, RuntimeError):
    """The first masked batch shows masked positions with outlier activation norms (the SAE would go dead)."""


class MaskedActivationsStore(ActivationsStore):
    """An `ActivationsStore` whose training stream feeds the LLM masked tokens.

    Build it like the stock store (e.g. `from_config`) or adopt an existing one with `from_store`, then give it a
    masker with `attach_masker`. Without a masker it behaves exactly like `ActivationsStore`.
    """

    masker: TokenMasker | None = None
    loss_positions: LossPositions = "all"
    max_norm_ratio: float | None = None
    first_batch_norm_ratio: float | None = None
    """Median hook norm at masked / clean positions of the first batch with masked positions (None before)."""
    _peeked: torch.Tensor | None = None
    _peeked_multi_hook: tuple[dict[str, torch.Tensor], Iterator[dict[str, torch.Tensor]]] | None = None
    n_sequences_drawn: int = 0
    """Context windows drawn from the dataset so far (every epoch counted)."""
    training_stream: Iterator[Any] | None = None
    """The multi-hook stream the trainer reads (the multi-SAE runner sets it); single-hook: the store's own."""
    _resumed_buffer: tuple[torch.Tensor, torch.Tensor] | None = None
    """(unserved rows, kept rows) of the mixing buffer, restored from a checkpoint and not yet served."""

    @classmethod
    def from_store(cls, store: ActivationsStore) -> MaskedActivationsStore:
        """Adopt a freshly built stock store (same dataset, settings and position) as a masked store."""
        if store._dataloader is not None:
            raise ValueError("only a store that has not started streaming can be adopted")
        adopted = cls.__new__(cls)
        adopted.__dict__.update(store.__dict__)
        if adopted.dataset is not None:
            # The sequence generator is bound to the old object; rebind it (it has not started yet).
            adopted.iterable_sequences = adopted._iterate_tokenized_sequences()
        return adopted

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
    def _get_filtered_multi_hook_llm_batch(self, raise_on_epoch_end: bool = False) -> dict[str, torch.Tensor]:
        """Multi-hook training batch: one masked LLM pass feeds every hook; same filter for all hooks."""
        if not self.is_masking:
            return super()._get_filtered_multi_hook_llm_batch(raise_on_epoch_end)
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

    def peek_batch(self) -> torch.Tensor:
        """The next training batch [train_batch_size_tokens, d_in], left in place for the next `next()` call."""
        if self._peeked is None:
            self._peeked = super().__next__()
        return self._peeked

    def peek_multi_hook_batch(self) -> dict[str, torch.Tensor]:
        """The next multi-hook batch {hook: [train_batch_size_tokens, d_in]}, left at the head of the stream that
        the next `get_multi_hook_data_loader()` call returns."""
        if self._peeked_multi_hook is None:
            stream = super().get_multi_hook_data_loader()
            self._peeked_multi_hook = (next(stream), stream)
        return self._peeked_multi_hook[0]

    def get_multi_hook_data_loader(self) -> Iterator[dict[str, torch.Tensor]]:
        """The stock multi-hook stream, resumed after a peeked batch or a restored mixing buffer."""
        if self._peeked_multi_hook is None:
            return itertools.chain(
                self._unserved_batches(split=self._split), super().get_multi_hook_data_loader()
            )
        (batch, stream), self._peeked_multi_hook = self._peeked_multi_hook, None
        return itertools.chain([batch], stream)

    def __next__(self) -> torch.Tensor:
        if self._peeked is not None:
            batch, self._peeked = self._peeked, None
            return batch
        return super().__next__()

    def _iterate_tokenized_sequences(self) -> Iterator[torch.Tensor]:
        """SAELens's context windows, counted in `n_sequences_drawn`."""
        for sequence in super()._iterate_tokenized_sequences():
            self.n_sequences_drawn += 1
            yield sequence

    def _skip_sequences(self, count: int) -> None:
        """Draw and drop context windows until `count` have been drawn, starting new epochs as SAELens does."""
        while self.n_sequences_drawn < count:
            try:
                next(self.iterable_sequences)
            except StopIteration:
                self.iterable_sequences = self._iterate_tokenized_sequences()

    def _iterate_filtered_activations(self) -> Iterator[torch.Tensor]:
        return self._after_kept_rows(super()._iterate_filtered_activations(), split=None)

    def _iterate_filtered_multi_hook_activations(self) -> Iterator[dict[str, torch.Tensor]]:
        return self._after_kept_rows(super()._iterate_filtered_multi_hook_activations(), split=self._split)

    def _after_kept_rows(self, stream: Iterator[Any], split: _Split | None) -> Iterator[Any]:
        """`stream` with a restored mixing buffer's kept rows put before its first batch, as SAELens's buffer
        concatenates them (read when the stream starts, i.e. after `load`)."""
        if self._resumed_buffer is None:
            yield from stream
            return
        kept, self._resumed_buffer = self._resumed_buffer[1], None
        first = next(stream)
        if split is None:
            yield torch.cat([kept.to(first.device, first.dtype), first])
        else:
            kept_per_hook = split(kept)
            yield {
                hook: torch.cat([kept_per_hook[hook].to(acts.device), acts]) for hook, acts in first.items()
            }
        yield from stream

    def _split(self, packed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split rows packed over hooks [n, sum of d_in] (SAELens's multi-hook buffer layout) into {hook: rows}."""
        assert self._hook_names is not None and self._hook_d_ins is not None
        parts = packed.split([self._hook_d_ins[hook] for hook in self._hook_names], dim=1)
        return dict(zip(self._hook_names, parts, strict=True))

    def _unserved_batches(self, split: _Split | None) -> Iterator[Any]:
        """The restored mixing buffer's unserved batches, in order (read when first asked for, after `load`)."""
        if self._resumed_buffer is None:
            return
        unserved, kept = self._resumed_buffer
        for start in range(0, unserved.shape[0], self.train_batch_size_tokens):
            end = start + self.train_batch_size_tokens
            self._resumed_buffer = (unserved[end:], kept)  # what a checkpoint after this batch must keep
            yield unserved[start:end] if split is None else split(unserved[start:end])

    def get_data_loader(self) -> Iterator[Any]:
        """SAELens's stream of mixed batches, continuing a restored mixing buffer when there is one."""
        return itertools.chain(self._unserved_batches(split=None), super().get_data_loader())

    def _mixing_buffer_state(self) -> dict[str, torch.Tensor]:
        """The rows in SAELens's mixing buffer (unserved in serving order, kept for mixing) and the global torch
        generator state that will shuffle them; empty before the stream starts."""
        if self._resumed_buffer is not None:  # a restored buffer not yet handed back to SAELens's
            unserved, kept = self._resumed_buffer
            return {
                _UNSERVED_KEY: unserved.clone(),
                _KEPT_KEY: kept.clone(),
                _TORCH_RNG_KEY: torch.get_rng_state(),
            }
        stream = self.training_stream if self.training_stream is not None else self._dataloader
        generator = _find_mixing_buffer(stream)
        if generator is None or generator.gi_frame is None:
            if stream is not None:
                logger.warning(
                    "the training stream is not SAELens's mixing buffer (prefetching?): its rows are not "
                    "checkpointed, and a resumed run skips them"
                )
            return {}
        if generator.gi_running:  # advanced by SAELens's prefetching thread right now: no consistent state
            logger.warning(
                "the mixing buffer is being refilled by the prefetcher: its rows are not checkpointed"
            )
            return {}
        local = generator.gi_frame.f_locals
        if "serving_buffer" not in local:
            return {}
        if self._peeked is not None or self._peeked_multi_hook is not None:
            raise RuntimeError("a peeked batch has not been trained on yet; checkpoint after the first step")
        batch_size = local["batch_size"]
        unserved = local["serving_buffer"][
            (local["batch_idx"] + 1) * batch_size : local["num_serving_batches"] * batch_size
        ]
        return {
            _UNSERVED_KEY: unserved.clone(),
            _KEPT_KEY: local["storage_buffer"].clone(),
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
            self._resumed_buffer = (state[_UNSERVED_KEY], state[_KEPT_KEY])
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
_MIXING_BUFFER_CODE = inspect.unwrap(mixing_buffer).__code__  # under its torch.no_grad wrapper


def _find_mixing_buffer(stream: Any) -> GeneratorType | None:
    """The SAELens `mixing_buffer` generator behind `stream`: itself, or one wrapped by SAELens's multi-hook
    splitter or by `itertools.chain` (found through the objects each suspended generator refers to)."""
    pending, seen = [stream], set()
    while pending:
        current = pending.pop()
        if id(current) in seen or not isinstance(current, GeneratorType | itertools.chain):
            continue
        seen.add(id(current))
        if isinstance(current, GeneratorType) and current.gi_code is _MIXING_BUFFER_CODE:
            return current
        pending.extend(gc.get_referents(current))
    return None
