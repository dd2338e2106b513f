"""The per-letter absorption gate on hand-made per-letter numbers."""

from __future__ import annotations

import math
from dataclasses import replace
from string import ascii_lowercase

import pytest

from sae_mask_plugin.evals.absorption.gate import (
    NOT_MEASURABLE,
    REASON_COSINE,
    REASON_FEW_WORDS,
    REASON_NOT_SCORED,
    REASON_OTHER_LETTER_NULL,
    REASON_PRECISION,
    REASON_PROBE_F1,
    REASON_RANDOM_SAE_NULL,
    AbsorptionGateConfig,
    LetterRecord,
    cosine_gates,
    headline_variant,
    judge_letter,
    scale_cos_threshold,
    summarize,
)

GOOD = LetterRecord(
    letter="a",
    probe_f1=0.9,
    num_probe_positive_words=120,
    main_latent_precision=0.8,
    main_latent_recall=0.6,
    main_latent_f1=0.69,
    main_latent_cos=0.5,
    main_latents_recall_on_probe_positive=0.7,
    absorption_fraction=0.2,
    full_absorption_rate=0.1,
    k1_absorption_fraction=0.3,
    k1_full_absorption_rate=0.25,
    null_other_letter_absorption_fraction=0.6,
    random_sae_main_latent_f1=0.1,
)
CONFIG = AbsorptionGateConfig(d_model=576)


def test_scaled_cosine_thresholds_double_at_d_576_and_match_saebench_at_2304():
    assert scale_cos_threshold(0.1, 576) == pytest.approx(0.2)
    assert scale_cos_threshold(0.025, 2304) == pytest.approx(0.025)
    gates = cosine_gates(576)
    assert gates["saebench"].absorber == 0.1 and gates["saebench"].full_absorption == 0.025
    assert gates["scaled"].absorber == pytest.approx(0.2)
    assert gates["scaled"].full_absorption == pytest.approx(0.05)
    assert headline_variant(576) == "scaled" and headline_variant(2304) == "saebench"
    assert CONFIG.min_main_latent_cos == pytest.approx(0.1 * math.sqrt(4))


def test_a_good_letter_passes():
    verdict = judge_letter(GOOD, CONFIG)
    assert verdict.passed and verdict.reasons == ()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"probe_f1": 0.5}, REASON_PROBE_F1),
        ({"num_probe_positive_words": 49}, REASON_FEW_WORDS),
        ({"main_latent_precision": 0.3}, REASON_PRECISION),
        ({"main_latent_cos": 0.15}, REASON_COSINE),  # passes SAEBench's 0.1, not the d-scaled 0.2
        ({"random_sae_main_latent_f1": 0.69}, REASON_RANDOM_SAE_NULL),
        ({"null_other_letter_absorption_fraction": 0.2}, REASON_OTHER_LETTER_NULL),
        ({"absorption_fraction": None, "full_absorption_rate": None}, REASON_NOT_SCORED),
    ],
)
def test_each_failing_quantity_gives_its_reason(change, reason):
    verdict = judge_letter(replace(GOOD, **change), CONFIG)
    assert not verdict.passed and verdict.reasons == (reason,)


def test_all_reasons_are_listed():
    bad = replace(
        GOOD, probe_f1=0.1, num_probe_positive_words=3, main_latent_precision=0.0, main_latent_cos=-0.2
    )
    assert judge_letter(bad, CONFIG).reasons == (
        REASON_PROBE_F1,
        REASON_FEW_WORDS,
        REASON_PRECISION,
        REASON_COSINE,
    )


def test_nulls_can_be_switched_off_but_not_silently_missing():
    no_nulls = replace(GOOD, null_other_letter_absorption_fraction=None, random_sae_main_latent_f1=None)
    with pytest.raises(ValueError, match="random-SAE null"):
        judge_letter(no_nulls, replace(CONFIG, use_other_letter_null=False))
    with pytest.raises(ValueError, match="other-letter null"):
        judge_letter(no_nulls, replace(CONFIG, use_random_sae_null=False))
    off = replace(CONFIG, use_other_letter_null=False, use_random_sae_null=False)
    assert judge_letter(no_nulls, off).passed


def test_k1_scores_do_not_change_the_verdict():
    for k1_fraction, k1_full in ((None, None), (1.0, 1.0), (0.0, 0.0)):
        record = replace(GOOD, k1_absorption_fraction=k1_fraction, k1_full_absorption_rate=k1_full)
        assert judge_letter(record, CONFIG).passed


def _letters(n_good: int, good_fraction: float, bad_fraction: float) -> list[LetterRecord]:
    """`n_good` passing letters; the others fail on precision and score 0.9 in every other absorption score."""
    bad_scores = {"full_absorption_rate": 0.9, "k1_absorption_fraction": 0.9, "k1_full_absorption_rate": 0.9}
    return [
        replace(GOOD, letter=letter, absorption_fraction=good_fraction)
        if i < n_good
        else replace(
            GOOD, letter=letter, absorption_fraction=bad_fraction, main_latent_precision=0.1, **bad_scores
        )
        for i, letter in enumerate(ascii_lowercase)
    ]


def test_headline_averages_passing_letters_only():
    summary = summarize(_letters(21, good_fraction=0.2, bad_fraction=0.5), CONFIG)
    assert summary.letters_passing == 21 and summary.measurable
    assert summary.passing_letters == tuple(ascii_lowercase[:21])
    assert summary.headline_absorption_fraction == pytest.approx(0.2)
    assert summary.headline_full_absorption_rate == pytest.approx(0.1)
    assert summary.headline_k1_full_absorption_rate == pytest.approx(0.25)
    assert summary.headline_k1_absorption_fraction == pytest.approx(0.3)
    assert summary.letters_failing_by_reason == {REASON_PRECISION: 5}
    assert summary.mean_main_latent_precision == pytest.approx((21 * 0.8 + 5 * 0.1) / 26)
    assert summary.describe() == "k = 1 full-absorption rate 0.250, absorption fraction 0.200 over 21 letters"
    as_json = summary.to_dict()
    assert as_json["headline_k1_full_absorption_rate"] == pytest.approx(0.25)
    assert as_json["headline_full_absorption_rate"] == pytest.approx(0.1)


def test_too_few_passing_letters_is_not_measurable():
    summary = summarize(_letters(19, good_fraction=0.2, bad_fraction=0.5), CONFIG)
    assert summary.letters_passing == 19 and not summary.measurable
    assert summary.headline_absorption_fraction is None and summary.headline_full_absorption_rate is None
    assert (
        summary.headline_k1_full_absorption_rate is None and summary.headline_k1_absorption_fraction is None
    )
    assert summary.describe().startswith(NOT_MEASURABLE)
    assert summarize(_letters(19, 0.2, 0.5), replace(CONFIG, min_passing_letters=19)).measurable


def test_k1_headline_is_not_computed_when_a_passing_letter_lacks_its_k1_score():
    letters = _letters(21, good_fraction=0.2, bad_fraction=0.5)
    letters[0] = replace(letters[0], k1_absorption_fraction=None, k1_full_absorption_rate=None)
    summary = summarize(letters, CONFIG)
    assert summary.letters_passing == 21 and summary.measurable
    assert (
        summary.headline_k1_full_absorption_rate is None and summary.headline_k1_absorption_fraction is None
    )
    assert summary.headline_absorption_fraction == pytest.approx(0.2)
    assert summary.describe() == "absorption fraction 0.200 over 21 letters"
    # a failing letter without k = 1 scores does not matter
    letters = _letters(21, good_fraction=0.2, bad_fraction=0.5)
    letters[-1] = replace(letters[-1], k1_absorption_fraction=None, k1_full_absorption_rate=None)
    assert summarize(letters, CONFIG).headline_k1_full_absorption_rate == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"d_model": 0}, "d_model"),
        ({"min_probe_positive_words": 0}, "min_probe_positive_words"),
        ({"min_probe_f1": 1.5}, "min_probe_f1"),
        ({"min_main_latent_precision": -0.1}, "min_main_latent_precision"),
        ({"main_latent_cos_at_reference": 1.0}, "main_latent_cos_at_reference"),
        ({"main_latent_cos_at_reference": 0.6, "d_model": 256}, "no latent can reach it"),
        ({"min_passing_letters": 0}, "min_passing_letters"),
    ],
)
def test_bad_config_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        replace(CONFIG, **change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"letter": "ab"}, "letter"),
        ({"letter": "1"}, "letter"),
        ({"num_probe_positive_words": -1}, "num_probe_positive_words"),
        ({"main_latent_precision": 1.2}, "main_latent_precision"),
        ({"main_latent_cos": 1.5}, "main_latent_cos"),
        ({"full_absorption_rate": None}, "scored together"),
        ({"k1_full_absorption_rate": None}, "k1_absorption_fraction and k1_full_absorption_rate"),
        ({"k1_full_absorption_rate": 1.5}, "k1_full_absorption_rate must be in"),
    ],
)
def test_bad_records_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        replace(GOOD, **change)


def test_duplicate_letters_are_rejected():
    with pytest.raises(ValueError, match="once"):
        summarize([GOOD, GOOD], CONFIG)


def test_the_letter_minimum_is_read_against_the_letters_eligible():
    """A letter is eligible when its probe is usable and it has enough probe-positive words (the LLM side): the
    SAE can only decide the rest, so the headline says how many of the eligible letters the minimum needs."""
    few_words = replace(GOOD, num_probe_positive_words=CONFIG.min_probe_positive_words - 1)
    weak_probe = replace(GOOD, probe_f1=CONFIG.min_probe_f1 - 0.01)
    imprecise = replace(GOOD, main_latent_precision=0.1)  # eligible, fails on the SAE's side
    letters = "abcdefghijklmnopqrstuvwxyz"
    records = [
        replace(template, letter=letter)
        for letter, template in zip(
            letters, [GOOD] * 18 + [imprecise] * 4 + [few_words] * 3 + [weak_probe], strict=True
        )
    ]
    summary = summarize(records, CONFIG)
    assert (summary.letters_passing, summary.letters_eligible) == (18, 22)
    assert summary.describe() == f"{NOT_MEASURABLE} (18 letters pass, 20 needed of 22 eligible)"
    assert summary.to_dict()["letters_eligible"] == 22
