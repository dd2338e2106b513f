"""The fixed absorption letter set: the rule, the set it fixes from baselines, and scores on exactly that set."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sae_mask_plugin.evals.absorption.letter_set import (
    FIXED_DROPPED,
    FIXED_FRACTION_SCORE,
    FIXED_K1_SCORE,
    FIXED_PASSING,
    LetterScore,
    LetterSetError,
    LetterSetRule,
    fix_letter_set,
    letter_scores_from_eval,
    letter_set_scores,
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of"),
        ({"min_baseline_seeds": 4, "letters": "abc"}, "exactly one of"),
        ({"letters": ""}, "non-empty"),
        ({"letters": "aB"}, "lowercase a-z"),
        ({"letters": "aba"}, "must not repeat"),
        ({"min_baseline_seeds": 0}, "positive integer"),
        ({"min_baseline_seeds": True}, "positive integer"),
        ({"min_baseline_seeds": 4, "min_letters": 0}, "min_letters"),
    ],
)
def test_a_bad_rule_is_refused_with_its_reason(kwargs, message):
    with pytest.raises(LetterSetError, match=message):
        LetterSetRule(**kwargs)


def test_the_set_holds_letters_passing_in_enough_baselines_and_every_seed_set_beside_it():
    passing = ["abcde", "abcd", "abcx", "abyz", "abcdq"]  # a, b: 5; c: 4; d: 3; e, x, y, z, q: 1
    letter_set = fix_letter_set(passing, LetterSetRule(min_baseline_seeds=4, min_letters=2))
    assert letter_set.letters == ("a", "b", "c")
    assert letter_set.every_seed_letters == ("a", "b")
    assert letter_set.n_baselines == 5
    assert letter_set.measurable
    assert letter_set.to_dict()["letters"] == "abc"
    assert not fix_letter_set(passing, LetterSetRule(min_baseline_seeds=4)).measurable  # 3 < 10 letters


@given(st.lists(st.sets(st.sampled_from("abcdefghij")), min_size=1, max_size=6), st.integers(1, 6))
def test_the_set_is_exactly_the_letters_counted_often_enough(passing, needed):
    rule = LetterSetRule(min_baseline_seeds=needed, min_letters=1)
    if needed > len(passing):
        with pytest.raises(LetterSetError, match="baselines"):
            fix_letter_set(passing, rule)
        return
    letter_set = fix_letter_set(passing, rule)
    for letter in "abcdefghij":
        count = sum(letter in seed for seed in passing)
        assert (letter in letter_set.letters) == (count >= needed)
        assert (letter in letter_set.every_seed_letters) == (count == len(passing))


def test_a_set_cannot_be_fixed_without_baselines_or_with_fewer_than_the_rule_needs():
    with pytest.raises(LetterSetError, match="has none"):
        fix_letter_set([], LetterSetRule(min_baseline_seeds=1))
    with pytest.raises(LetterSetError, match="needs letters passing in >= 4 baseline seeds"):
        fix_letter_set(["abc", "abc", "abc"], LetterSetRule(min_baseline_seeds=4))


def test_a_hand_fixed_set_ignores_what_the_baselines_pass():
    letter_set = fix_letter_set(["ab", "ab"], LetterSetRule(letters="zyx", min_letters=3))
    assert letter_set.letters == ("x", "y", "z")
    assert letter_set.every_seed_letters == ("a", "b")


def _scores(k1: dict[str, float], passed: str) -> dict[str, LetterScore]:
    return {
        letter: LetterScore(
            passed=letter in passed, k1_full_absorption_rate=rate, absorption_fraction=rate / 2
        )
        for letter, rate in k1.items()
    }


def test_every_letter_of_the_set_is_scored_whether_or_not_it_passes_in_this_sae():
    letter_set = fix_letter_set(["abc", "abc"], LetterSetRule(min_baseline_seeds=2, min_letters=3))
    # this SAE passes only its easy letter a (rate 0.1); b and c still count, and d (not in the set) does not
    scores = letter_set_scores(_scores({"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.0}, passed="ad"), letter_set)
    assert scores[FIXED_K1_SCORE] == pytest.approx(0.5)
    assert scores[FIXED_FRACTION_SCORE] == pytest.approx(0.25)
    assert scores[FIXED_PASSING] == 1


def test_a_set_below_its_minimum_counts_passing_letters_but_has_no_score():
    letter_set = fix_letter_set(["ab", "ab"], LetterSetRule(min_baseline_seeds=2, min_letters=3))
    scores = letter_set_scores(_scores({"a": 0.1, "b": 0.5}, passed="ab"), letter_set)
    assert scores[FIXED_K1_SCORE] is None and scores[FIXED_FRACTION_SCORE] is None
    assert scores[FIXED_PASSING] == 2


def test_an_unscored_letter_leaves_the_score_undefined_and_a_missing_letter_is_an_error():
    letter_set = fix_letter_set(["ab", "ab"], LetterSetRule(min_baseline_seeds=2, min_letters=2))
    unscored = {"a": LetterScore(True, 0.2, 0.1), "b": LetterScore(False, None, None)}
    assert letter_set_scores(unscored, letter_set)[FIXED_K1_SCORE] is None
    with pytest.raises(LetterSetError, match="no record of letters b"):
        letter_set_scores({"a": LetterScore(True, 0.2, 0.1)}, letter_set)


def test_letter_scores_are_read_from_the_headline_variant_of_an_absorption_eval_result():
    def entry(letter: str, scaled: float, saebench: float, passed: bool) -> dict:
        return {
            "letter": letter,
            "by_variant": {
                "scaled": {"k1_full_absorption_rate": scaled, "absorption_fraction": 0.3, "passed": passed},
                "saebench": {"k1_full_absorption_rate": saebench, "absorption_fraction": 0.9, "passed": True},
            },
        }

    result = {
        "eval_result_unstructured": {
            "absorption_gate": {
                "headline_variant": "scaled",
                "letters": [entry("a", 0.25, 0.75, True), entry("b", 0.5, 0.1, False)],
            }
        }
    }
    scores = letter_scores_from_eval(result)
    assert scores == {"a": LetterScore(True, 0.25, 0.3), "b": LetterScore(False, 0.5, 0.3)}
    assert letter_scores_from_eval({"eval_result_unstructured": {"probe_f1_by_letter": {}}}) is None
    assert letter_scores_from_eval({"eval_result_metrics": {}}) is None


def test_the_dropped_word_rate_is_averaged_over_the_set_when_every_letter_has_one():
    letter_set = fix_letter_set(["ab", "ab"], LetterSetRule(min_baseline_seeds=2, min_letters=2))
    scores = {
        "a": LetterScore(True, 0.2, 0.1, k1_dropped_rate=0.1),
        "b": LetterScore(True, 0.4, 0.2, k1_dropped_rate=0.3),
    }
    assert letter_set_scores(scores, letter_set)[FIXED_DROPPED] == pytest.approx(0.2)
    older = {"a": LetterScore(True, 0.2, 0.1), "b": LetterScore(True, 0.4, 0.2)}  # evals before the rate
    assert letter_set_scores(older, letter_set)[FIXED_DROPPED] is None
