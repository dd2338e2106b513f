"""Absorption on a fixed letter set in the report: letters fixed from the baselines, both arms scored on them."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from report_checks import assert_report_matches_results, run_record

from sae_mask_plugin.evals.absorption.letter_set import (
    FIXED_K1_SCORE,
    FIXED_PASSING,
    LetterSetError,
    LetterSetRule,
)
from sae_mask_plugin.report.build import build_report, paired_comparisons
from sae_mask_plugin.report.letter_sets import apply_letter_sets

LETTERS = "abcdefghijkl"


def _letters(rates: dict[str, float], passed: str) -> dict[str, dict]:
    return {
        letter: {"passed": letter in passed, "k1_full_absorption_rate": rate, "absorption_fraction": rate / 2}
        for letter, rate in rates.items()
    }


def _arm(masked_shift: float, masked_passes: str) -> list:
    """Five seeds at k 16 and 32: baselines pass letters a-k (seed s also fails letter `LETTERS[s]` only when
    s == 0, and passes l only in seed 1); masked SAEs' k = 1 rates are the baseline's plus `masked_shift`."""
    records = []
    for seed in range(5):
        base_rates = {letter: 0.2 + 0.02 * index + 0.01 * seed for index, letter in enumerate(LETTERS)}
        base_passing = (
            LETTERS[:11].replace("a", "") if seed == 0 else LETTERS[:11] + ("l" if seed == 1 else "")
        )
        masked_rates = {letter: rate + masked_shift for letter, rate in base_rates.items()}
        for k, l0 in ((16, 16.0), (32, 32.0)):
            common = {"l0": l0, "explained_variance": 0.9, "frac_alive": 0.95}
            records.append(
                replace(
                    run_record(0.0, seed, k, **common), absorption_letters=_letters(base_rates, base_passing)
                )
            )
        records.append(
            replace(
                run_record(0.3, seed, 32, l0=24.0, explained_variance=0.88, frac_alive=0.9),
                absorption_letters=_letters(masked_rates, masked_passes),
            )
        )
    return records


def test_the_set_comes_from_the_baselines_and_every_sae_of_the_cell_is_scored_on_it():
    records, letter_sets = apply_letter_sets(
        _arm(-0.1, masked_passes="ab"), LetterSetRule(min_baseline_seeds=4)
    )
    assert set(letter_sets) == {"batchtopk w256 k16", "batchtopk w256 k32"}
    letter_set = letter_sets["batchtopk w256 k32"]
    assert "".join(letter_set.letters) == "abcdefghijk"  # a fails in one seed of five, l passes in one
    assert "".join(letter_set.every_seed_letters) == "bcdefghijk"
    masked = next(r for r in records if r.mask_p > 0 and r.seed == 2)
    expected = sum(0.2 + 0.02 * i + 0.02 - 0.1 for i in range(11)) / 11
    assert masked.metrics[FIXED_K1_SCORE] == pytest.approx(expected)  # all 11 letters, not its own 2
    assert masked.metrics[FIXED_PASSING] == 2


def test_the_same_k_view_recovers_a_known_difference_on_the_fixed_set_and_the_matched_view_leaves_it_out(
    tmp_path,
):
    files = build_report(
        _arm(-0.1, masked_passes="ab"), tmp_path, letter_set_rule=LetterSetRule(min_baseline_seeds=4)
    )
    results = json.loads(files.results.read_text())
    same_k = {c["metric"]: c for c in results["same_k_comparisons"]["p=0.3 token | batchtopk w256 k32"]}
    assert same_k[FIXED_K1_SCORE]["difference"]["mean"] == pytest.approx(-0.1)
    assert same_k[FIXED_K1_SCORE]["verdict"].startswith("masked lower (better)")
    assert same_k[FIXED_PASSING]["difference"]["mean"] == pytest.approx(2 - 10.8)
    assert same_k[FIXED_PASSING]["verdict"].startswith("masked lower (worse)")
    matched = results["matched_l0_comparisons"]["p=0.3 token | batchtopk w256 k32"]
    assert {c["metric"] for c in matched}.isdisjoint({FIXED_K1_SCORE, FIXED_PASSING})
    assert results["absorption_letter_sets"]["batchtopk w256 k32"]["letters"] == "abcdefghijk"
    assert results["absorption_letter_sets"]["batchtopk w256 k32"]["rule"]["min_baseline_seeds"] == 4
    report = files.report.read_text()
    assert "## Absorption on a fixed letter set" in report
    assert (
        "| batchtopk w256 k32 | letters passing the gate in >= 4 baseline seeds | 5 | abcdefghijk (11) |"
        in report
    )
    assert_report_matches_results(report, results, tmp_path)


def test_equal_arms_give_an_interval_covering_zero():
    records, _ = apply_letter_sets(_arm(0.0, masked_passes=LETTERS[:11]), LetterSetRule(min_baseline_seeds=4))
    cell = paired_comparisons(records)["p=0.3 token | batchtopk w256 k32"]
    k1 = next(c for c in cell if c.metric == FIXED_K1_SCORE)
    assert k1.difference.low <= 0 <= k1.difference.high
    assert k1.verdict == "no detectable difference"


def test_a_rule_asking_for_more_baselines_than_a_cell_has_is_an_error():
    with pytest.raises(LetterSetError, match="the cell has 5 baselines"):
        apply_letter_sets(_arm(0.0, masked_passes="a"), LetterSetRule(min_baseline_seeds=6))


def test_without_a_rule_the_report_has_no_fixed_set(tmp_path):
    files = build_report(_arm(-0.1, masked_passes="ab"), tmp_path)
    results = json.loads(files.results.read_text())
    assert results["absorption_letter_sets"] == {}
    assert "fixed letter set" not in files.report.read_text()
