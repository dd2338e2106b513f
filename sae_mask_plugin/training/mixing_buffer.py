"""`MixingBuffer`: SAELens's `mixing_buffer` shuffling, as an iterator whose state is held in fields.

SAELens mixes activations in a generator (`sae_lens.training.mixing_buffer.mixing_buffer`): rows accumulate until
they fill the buffer, are shuffled with `torch.randperm` on the global generator, a fraction is kept for mixing
with the next rows and the rest is served in batches. `MixingBuffer` does exactly that, draw for draw, so that it
yields the same batches for the same inputs and torch seed; its state (the rows being served, the index of the
next batch to serve, the rows kept for mixing) is fields, so that a checkpoint reads it and a resumed run
continues it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class MixingBuffer(Iterator[torch.Tensor]):
    """Batches of `batch_size` rows mixed as SAELens's `mixing_buffer` mixes them.

    Args:
        buffer_size: Rows to accumulate before a shuffle (at least `batch_size`).
        batch_size: Rows per served batch.
        activations: New rows, each [n, *dims].
        mix_fraction: Fraction of `buffer_size` kept for mixing with the next rows (0: no shuffle).
    """

    serving: torch.Tensor | None = None
    """Rows being served [n_serving_batches * batch_size, *dims] (None before the first fill)."""
    batch_idx: int = 0
    """Index of the next batch of `serving` to serve."""
    storage: torch.Tensor | None = None
    """Rows kept for mixing with the next rows [n_kept, *dims] (None before the first rows)."""
    exhausted: bool = False
    """`activations` has ended; only the rest of `serving` is left to serve."""

    def __init__(
        self,
        buffer_size: int,
        batch_size: int,
        activations: Iterator[torch.Tensor],
        mix_fraction: float = 0.5,
    ) -> None:
        if buffer_size < batch_size:
            raise ValueError("Buffer size must be greater than or equal to batch size")
        if not 0 <= mix_fraction <= 1:
            raise ValueError("mix_fraction must be in [0, 1]")
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.activations = activations
        self.mix_fraction = mix_fraction

    @property
    def n_serving_batches(self) -> int:
        return 0 if self.serving is None else self.serving.shape[0] // self.batch_size

    @property
    def unserved(self) -> torch.Tensor | None:
        """The rows of `serving` not served yet, in serving order [n, *dims] (None before the first fill)."""
        if self.serving is None:
            return None
        return self.serving[self.batch_idx * self.batch_size :]

    def restore(self, unserved: torch.Tensor, kept: torch.Tensor) -> None:
        """Continue from a saved state: serve `unserved` [n, *dims] (whole batches, in order), then mix the next
        rows with `kept` [n_kept, *dims]."""
        self.serving, self.batch_idx, self.storage = unserved, 0, kept

    @torch.no_grad()
    def peek(self) -> torch.Tensor:
        """The next batch [batch_size, *dims], left to be served by the next `next()`."""
        while self.batch_idx >= self.n_serving_batches:
            if self.exhausted:
                raise StopIteration
            self._fill()
        assert self.serving is not None
        start = self.batch_idx * self.batch_size
        return self.serving[start : start + self.batch_size]

    def __next__(self) -> torch.Tensor:
        batch = self.peek()
        self.batch_idx += 1
        return batch

    def _fill(self) -> None:
        """Draw rows until the buffer is full, shuffle and split it into served and kept rows; when
        `activations` ends, serve the whole batches of the kept rows (SAELens's last batches). The rows are joined
        once per fill (SAELens joins them at every draw, the same rows in the same order: a cost quadratic in the
        buffer's size)."""
        chunks = [] if self.storage is None else [self.storage]
        rows = sum(chunk.shape[0] for chunk in chunks)
        for new_activations in self.activations:
            chunks.append(new_activations)
            rows += new_activations.shape[0]
            if rows >= self.buffer_size:
                self.storage = torch.cat(chunks, dim=0)
                if self.mix_fraction > 0:
                    self.storage = self.storage[torch.randperm(self.storage.shape[0])]
                keep_for_mixing = int(self.buffer_size * self.mix_fraction)
                num_serving_batches = max(1, (self.storage.shape[0] - keep_for_mixing) // self.batch_size)
                self._serve(num_serving_batches * self.batch_size)
                return
        self.exhausted = True
        if chunks:
            self.storage = torch.cat(chunks, dim=0)
            self._serve(self.storage.shape[0] // self.batch_size * self.batch_size)

    def _serve(self, cutoff: int) -> None:
        assert self.storage is not None
        self.serving, self.storage, self.batch_idx = self.storage[:cutoff], self.storage[cutoff:], 0
