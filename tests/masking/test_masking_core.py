"""Property tests of the pure masking core (no model)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_mask_plugin.masking import MaskingConfig, TokenMasker, draw_mask, mask_tokens, protected_positions

VOCAB = 50
MASK_ID = 3
PROTECTED = torch.tensor([0, 1, 2])
FAST = settings(max_examples=100, deadline=None)

shapes = st.tuples(st.integers(1, 6), st.integers(1, 40))
probabilities = st.floats(0.0, 0.95)
seeds = st.integers(0, 2**31 - 1)
strategies_ = st.sampled_from(["token", "random", "unigram", "span"])


def random_tokens(shape: tuple[int, int], seed: int, dtype: torch.dtype = torch.long) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def masker(strategy: str, p: float, seed: int, **kwargs: object) -> TokenMasker:
    span = max(3.0, p / (1 - p))
    cfg = MaskingConfig(p=p, strategy=strategy, mask_token=MASK_ID, span_mean_length=span, **kwargs)  # type: ignore[arg-type]
    return TokenMasker(
        cfg,
        vocab_size=VOCAB,
        mask_token_id=MASK_ID,
        special_token_ids=PROTECTED.tolist(),
        total_tokens=1000,
        seed=seed,
    )


@FAST
@given(
    shape=shapes,
    p=probabilities,
    seed=seeds,
    strategy=strategies_,
    dtype=st.sampled_from([torch.long, torch.int32]),
    prefix=st.integers(0, 5),
)
def test_input_untouched_shape_dtype_kept_and_protected_never_masked(shape, p, seed, strategy, dtype, prefix):
    tokens = random_tokens(shape, seed, dtype)
    original = tokens.clone()
    m = masker(strategy, p, seed, protect_prefix=prefix)
    masked, mask = m(tokens)
    assert torch.equal(tokens, original)
    assert masked.shape == tokens.shape and masked.dtype == dtype and masked.device == tokens.device
    assert mask.shape == tokens.shape and mask.dtype == torch.bool
    protected = protected_positions(tokens, PROTECTED, prefix)
    assert not bool((mask & protected).any())
    assert torch.equal(masked[~mask], tokens[~mask])
    if strategy in ("token", "span"):
        assert bool((masked[mask] == MASK_ID).all())
    else:
        assert not bool(torch.isin(masked[mask], PROTECTED).any())


@FAST
@given(shape=shapes, p=probabilities, seed=seeds, strategy=strategies_)
def test_same_seed_same_masks(shape, p, seed, strategy):
    tokens = random_tokens(shape, seed)
    first, second = masker(strategy, p, seed), masker(strategy, p, seed)
    for _ in range(2):
        a, b = first(tokens), second(tokens)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@FAST
@given(p=st.floats(0.02, 0.9), seed=seeds, strategy=st.sampled_from(["token", "random", "unigram"]))
def test_independent_mask_rate_within_binomial_interval(p, seed, strategy):
    tokens = random_tokens((64, 64), seed)
    _, mask = masker(strategy, p, seed)(tokens)
    eligible = int((~protected_positions(tokens, PROTECTED)).sum())
    sd = math.sqrt(eligible * p * (1 - p))
    assert abs(int(mask.sum()) - eligible * p) <= 5 * sd + 1


@FAST
@given(p=st.floats(0.05, 0.8), length=st.floats(1.0, 8.0), seed=seeds)
def test_span_rate_and_mean_length(p, length, seed):
    length = max(length, p / (1 - p))
    mask = draw_mask(
        (256, 256), p, strategy="span", span_mean_length=length, generator=torch.Generator().manual_seed(seed)
    )
    n = mask.numel()
    # Runs are correlated: the variance of the count grows by about the mean span length's factor 2L.
    sd = math.sqrt(n * p * (1 - p) * 2 * length)
    assert abs(int(mask.sum()) - n * p) <= 5 * sd
    padded = torch.nn.functional.pad(mask.int(), (1, 1))
    starts = int(((padded[:, 1:] - padded[:, :-1]) == 1).sum())
    # Span lengths are geometric with mean L (variance L(L - 1)); spans cut at row ends only shorten the mean.
    standard_error = math.sqrt(length * (length - 1) / starts)
    mean_length = int(mask.sum()) / starts
    assert 0.75 * length - 5 * standard_error <= mean_length <= length + 5 * standard_error + 1e-9


@FAST
@given(
    p=st.floats(0.0, 0.95),
    p_end=st.floats(0.0, 0.95),
    horizon=st.integers(1, 10_000),
    steps=st.lists(st.integers(0, 20_000), min_size=2, max_size=10),
)
def test_schedules(p, p_end, horizon, steps):
    steps = sorted(steps)
    constant = MaskingConfig(p=p)
    warmup = MaskingConfig(p=p, schedule="warmup", schedule_tokens=horizon)
    anneal = MaskingConfig(p=p, schedule="anneal", p_end=p_end, schedule_tokens=horizon)
    assert all(constant.p_at(t, horizon) == p for t in steps)
    values = [warmup.p_at(t, 0) for t in steps]
    assert warmup.p_at(0, 0) == 0.0 and warmup.p_at(horizon, 0) == pytest.approx(p)
    assert all(a <= b + 1e-12 for a, b in zip(values, values[1:], strict=False))
    assert anneal.p_at(0, 0) == p and anneal.p_at(horizon, 0) == pytest.approx(p_end)
    annealed = [anneal.p_at(t, 0) for t in steps]
    assert all(min(p, p_end) - 1e-12 <= v <= max(p, p_end) + 1e-12 for v in annealed)


@FAST
@given(shape=shapes, p=st.floats(0.05, 0.9), seed=seeds, strategy=strategies_, split=st.integers(1, 4))
def test_state_dict_resumes_the_exact_mask_sequence(shape, p, seed, strategy, split):
    batches = [random_tokens(shape, seed + i) for i in range(5)]
    uninterrupted = masker(strategy, p, seed)
    expected = [uninterrupted(b) for b in batches]
    first = masker(strategy, p, seed)
    for b in batches[:split]:
        first(b)
    resumed = masker(strategy, p, seed + 1)
    resumed.load_state_dict(first.state_dict())
    for b, (masked, mask) in zip(batches[split:], expected[split:], strict=True):
        got_masked, got_mask = resumed(b)
        assert torch.equal(got_masked, masked) and torch.equal(got_mask, mask)


def test_unigram_draws_follow_the_text_distribution():
    tokens = torch.full((64, 64), 7)
    tokens[:, ::4] = 9  # 25 % of the text is token 9, 75 % token 7
    masked, mask = masker("unigram", 0.5, 0)(tokens)
    drawn = masked[mask]
    assert set(drawn.unique().tolist()) <= {7, 9}
    assert 0.65 < float((drawn == 7).float().mean()) < 0.85


def test_mask_tokens_rejects_bad_batches():
    with pytest.raises(ValueError, match=r"\[batch, seq\]"):
        mask_tokens(torch.zeros(5, dtype=torch.long), 0.3, mask_token_id=1)
    with pytest.raises(ValueError, match="integer"):
        mask_tokens(torch.zeros(2, 5), 0.3, mask_token_id=1)
    with pytest.raises(ValueError, match="mask_token_id"):
        mask_tokens(torch.zeros(2, 5, dtype=torch.long), 0.3)
