"""`MixingBuffer` yields exactly the batches of SAELens's `mixing_buffer` generator for the same inputs and torch
seed, and a buffer restored from its fields continues exactly where the first one stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from sae_lens.training.mixing_buffer import mixing_buffer

from sae_mask_plugin.training.mixing_buffer import MixingBuffer


def chunks(n_chunks: int, rows: int = 24, width: int = 3) -> list[torch.Tensor]:
    """Distinct rows (row i holds i), in chunks of `rows` [rows, width] as an LLM batch would come."""
    values = torch.arange(n_chunks * rows, dtype=torch.float32)
    return list(values[:, None].expand(-1, width).clone().split(rows))


def drain(batches: Iterator[torch.Tensor], limit: int = 1000) -> list[torch.Tensor]:
    out = []
    for batch in batches:
        out.append(batch.clone())
        if len(out) == limit:
            break
    return out


SETTINGS = [  # buffer_size, batch_size, mix_fraction, chunk rows
    (64, 16, 0.5, 24),
    (64, 16, 0.0, 24),
    (64, 16, 1.0, 24),
    (16, 16, 0.5, 24),  # a buffer of one batch: SAELens still serves one batch per fill
    (100, 7, 0.3, 13),  # fills that overshoot the buffer and batches that do not divide it
    (48, 16, 0.75, 50),
]


@pytest.mark.parametrize(("buffer_size", "batch_size", "mix_fraction", "rows"), SETTINGS)
def test_it_yields_saelens_batches_for_the_same_seed(buffer_size, batch_size, mix_fraction, rows) -> None:
    inputs = chunks(20, rows)
    torch.manual_seed(7)
    expected = drain(mixing_buffer(buffer_size, batch_size, iter(inputs), mix_fraction))
    torch.manual_seed(7)
    got = drain(MixingBuffer(buffer_size, batch_size, iter(inputs), mix_fraction))
    assert len(expected) > len(inputs) * rows // batch_size // 2  # the tail after the last fill is served too
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    if mix_fraction > 0:  # the comparison sees shuffled rows, not the input order
        assert not torch.equal(torch.cat(got)[:, 0], torch.sort(torch.cat(got)[:, 0]).values)


def test_it_yields_nothing_from_no_rows_and_refuses_bad_sizes() -> None:
    assert drain(MixingBuffer(8, 4, iter([]))) == []
    with pytest.raises(ValueError, match="greater than or equal to batch size"):
        MixingBuffer(4, 8, iter([]))
    with pytest.raises(ValueError, match="mix_fraction"):
        MixingBuffer(8, 4, iter([]), mix_fraction=1.5)


def test_peek_leaves_the_batch_for_next() -> None:
    torch.manual_seed(0)
    buffer = MixingBuffer(64, 16, iter(chunks(10)))
    assert buffer.serving is None  # nothing drawn before it is read
    peeked = buffer.peek().clone()
    assert buffer.batch_idx == 0 and buffer.serving is not None
    assert torch.equal(buffer.peek(), peeked)
    assert torch.equal(next(buffer), peeked)
    assert buffer.batch_idx == 1


@pytest.mark.parametrize("stop_after", [1, 2, 3, 7])
def test_a_buffer_restored_from_its_fields_continues_exactly(stop_after: int) -> None:
    inputs = chunks(20)
    torch.manual_seed(3)
    expected = drain(MixingBuffer(64, 16, iter(inputs), 0.5))

    torch.manual_seed(3)
    source = iter(inputs)
    first = MixingBuffer(64, 16, source, 0.5)
    served = drain(first, limit=stop_after)
    assert first.unserved is not None and first.storage is not None
    unserved, kept, rng = first.unserved.clone(), first.storage.clone(), torch.get_rng_state()

    torch.manual_seed(12345)  # whatever happened in between
    torch.set_rng_state(rng)
    resumed = MixingBuffer(64, 16, source, 0.5)  # the rows not drawn yet
    resumed.restore(unserved=unserved, kept=kept)
    got = served + drain(resumed)
    assert len(got) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
