"""Paired statistics and the report built from them (synthetic records: no model needed)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from report_checks import assert_report_matches_results, run_record
from scipy import stats

from sae_mask_plugin.report import (
    build_report,
    interpolate_in_log_l0,
    matched_l0_pairs,
    paired_comparisons,
)
from sae_mask_plugin.report.collect import flatten_metrics
from sae_mask_plugin.report.gates import gate_warnings
from sae_mask_plugin.report.stats import PairedComparison, Summary, false_discovery_control


def test_summary_interval_matches_scipy_t_interval():
    values = [0.2, 0.25, 0.31, 0.27]
    summary = Summary.of(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert summary.low == pytest.approx(low) and summary.high == pytest.approx(high)
    assert Summary.of([0.3]).low is None


def test_verdict_claims_only_what_the_interval_supports():
    clear = PairedComparison.of("mse", [1.0, 1.1, 1.2], [0.5, 0.61, 0.69], higher_is_better=False)
    assert clear.verdict == "masked lower (better)"
    noisy = PairedComparison.of("mse", [1.0, 1.1, 1.2], [1.3, 0.9, 1.15], higher_is_better=False)
    assert noisy.verdict == "no detectable difference"
    single = PairedComparison.of("mse", [1.0], [0.2], higher_is_better=False)
    assert single.verdict == "one pair: no interval available"
    assert single.p_value is None


def test_masked_runs_pair_only_with_their_own_seed_baseline():
    records = [
        run_record(0, 0, mse=1.0),
        run_record(0, 1, mse=2.0),
        run_record(0.3, 1, mse=1.5),
        run_record(0.3, 7, mse=9.0),
    ]
    comparisons = paired_comparisons(records)
    (cell,) = comparisons
    (mse,) = comparisons[cell]
    assert mse.difference.n == 1 and mse.difference.mean == pytest.approx(-0.5)


def test_report_numbers_match_results_json(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for seed in range(3):
        for p in (0.0, 0.3):
            records.append(
                run_record(
                    p,
                    seed,
                    l0=16 + rng.normal(),
                    mean_absorption_fraction_score=0.5 - p / 3 + 0.01 * rng.normal(),
                    sae_ood_gap=0.1 + 0.02 * rng.normal(),
                    sae_ood_accuracy=0.6 + 0.02 * rng.normal(),
                    oracle_ood_accuracy=0.65,
                )
            )
    files = build_report(records, tmp_path)
    results = json.loads(files.results.read_text())
    report = files.report.read_text()
    assert {p.name for p in files.plots} == {"metrics_vs_l0.png", "ood_accuracy_vs_p.png", "differences.png"}
    assert_report_matches_results(report, results, tmp_path)
    assert results["settings"]["seeds"] == [0, 1, 2]
    assert "no interval is available" not in report


def test_single_seed_report_says_no_interval(tmp_path):
    files = build_report([run_record(0, 0, mse=1.0), run_record(0.3, 0, mse=0.9)], tmp_path)
    assert "no interval is available" in files.report.read_text()


def test_flattened_metrics_include_top_k_that_saebench_has_no_field_for():
    result = {
        "eval_result_metrics": {"sae": {"sae_top_1_test_accuracy": 0.7, "sae_top_10_test_accuracy": None}},
        "sae_metrics_by_k": {"1": {"test_accuracy": 0.1}, "16": {"test_accuracy": 0.75, "test_auc": 0.8}},
    }
    flat = flatten_metrics(result)
    assert flat["sae_top_1_test_accuracy"] == 0.7  # SAEBench's own field wins over the by-k copy
    assert flat["sae_top_16_test_accuracy"] == 0.75 and flat["sae_top_16_test_auc"] == 0.8
    assert "sae_top_10_test_accuracy" not in flat


def test_false_discovery_control_flags_isolated_marginal_verdicts():
    marginal = PairedComparison.of("mse", [1.0, 1.1, 1.2], [0.9, 1.02, 1.05], higher_is_better=False)
    assert marginal.verdict == "masked lower (better)" and 0.01 < marginal.p_value < 0.05
    nulls = [
        PairedComparison.of("l0", [1.0, 2.0, 3.0], [1.5 + i * 0.01, 1.4, 3.2], higher_is_better=None)
        for i in range(9)
    ]
    single = PairedComparison.of("mse", [1.0], [0.2], higher_is_better=False)
    adjusted = false_discovery_control([marginal, *nulls, single])
    expected = stats.false_discovery_control([c.p_value for c in [marginal, *nulls]])
    assert [c.q_value for c in adjusted[:-1]] == pytest.approx(list(expected))
    assert adjusted[0].verdict == "masked lower (better); not significant after FDR correction"
    assert adjusted[-1].q_value is None and adjusted[-1].verdict == "one pair: no interval available"
    strong = PairedComparison.of("mse", [1.0, 1.1, 1.2], [0.5, 0.61, 0.69], higher_is_better=False)
    assert false_discovery_control([strong])[0].verdict == "masked lower (better)"


def test_interpolation_is_linear_in_log_l0_against_a_hand_computed_case():
    # L0 16 -> 0.6, L0 64 -> 0.2: at L0 32 (halfway in log2 L0) the value is 0.4; at L0 20, log2(20/16)/2 of the way
    points = [(64.0, 0.2), (16.0, 0.6)]
    assert interpolate_in_log_l0(points, 32.0) == pytest.approx(0.4)
    fraction = (np.log(20) - np.log(16)) / (np.log(64) - np.log(16))
    assert interpolate_in_log_l0(points, 20.0) == pytest.approx(0.6 - 0.4 * fraction)
    assert interpolate_in_log_l0(points, 16.0) == pytest.approx(0.6)


def test_interpolation_never_extrapolates():
    points = [(16.0, 0.6), (64.0, 0.2)]
    assert interpolate_in_log_l0(points, 15.9) is None
    assert interpolate_in_log_l0(points, 64.1) is None
    assert interpolate_in_log_l0([(16.0, 0.6)], 16.0) is None


def test_matched_l0_pairs_use_the_same_seeds_baseline_curve_and_list_out_of_range_runs():
    records = [
        run_record(0, 0, k=16, l0=16.0, mean_absorption_fraction_score=0.6),
        run_record(0, 0, k=64, l0=64.0, mean_absorption_fraction_score=0.2),
        run_record(
            0, 1, k=16, l0=16.0, mean_absorption_fraction_score=0.9
        ),  # another seed: never used for seed 0
        run_record(0, 1, k=64, l0=64.0, mean_absorption_fraction_score=0.9),
        run_record(0.3, 0, k=16, l0=32.0, mean_absorption_fraction_score=0.35),
        run_record(0.3, 0, k=64, l0=80.0, mean_absorption_fraction_score=0.1),
    ]
    pairs, unmatched = matched_l0_pairs(records)
    ((baseline, masked),) = pairs["p=0.3 token | batchtopk w256 k16"]
    assert baseline["mean_absorption_fraction_score"] == pytest.approx(0.4)
    assert masked["mean_absorption_fraction_score"] == 0.35
    assert "l0" not in baseline  # L0 is what is matched, not a compared metric
    (out_of_range,) = unmatched
    assert (
        out_of_range.cell == "p=0.3 token | batchtopk w256 k64" and "not extrapolated" in out_of_range.reason
    )


def test_report_headline_uses_matched_l0_and_states_the_direction(tmp_path):
    records = []
    for seed in range(3):
        for k, l0 in ((16, 16.0), (64, 64.0)):
            records.append(run_record(0, seed, k=k, l0=l0, gated_absorption_fraction_score=0.7 - l0 / 200))
        records.append(
            run_record(0.3, seed, k=16, l0=32.0, gated_absorption_fraction_score=0.3 + 0.01 * seed)
        )
    files = build_report(records, tmp_path)
    results = json.loads(files.results.read_text())
    (row,) = [
        r
        for r in results["headline"]
        if r["metric"] == "gated_absorption_fraction_score" and r["view"] == "matched L0"
    ]
    assert row["verdict"] == "masked lower (better)"
    # baseline at L0 32: halfway in log L0 between 0.62 (L0 16) and 0.38 (L0 64) = 0.5; masked 0.31 on average
    assert row["difference"]["mean"] == pytest.approx(0.31 - 0.5)
    report = files.report.read_text()
    assert (
        "absorption fraction (SAEBench, gated letters; not validated on ground truth) (lower better)"
        in report
    )
    headline = report.index("## Headline")
    assert (
        headline < report.index("### Matched L0") < report.index("### Same k") < report.index("## Appendix A")
    )
    assert_report_matches_results(report, results, tmp_path)


def test_gates_warn_about_undertrained_saes_few_letters_and_uncalibrated_thresholds():
    calibrated = {"calibrated_threshold": 0.1, "calibration_tokens": 100}
    good = [
        replace(
            run_record(p, 0, explained_variance=0.9, frac_alive=0.95, num_letters_with_probe_feature=24),
            calibration=calibrated,
        )
        for p in (0.0, 0.3)
    ]
    assert gate_warnings(good, n_seeds=3) == []
    weak = [
        run_record(0.0, 0, explained_variance=0.78, frac_alive=0.64, num_letters_with_probe_feature=18),
        run_record(0.3, 0, explained_variance=0.8, frac_alive=0.9, num_letters_with_probe_feature=22),
    ]
    warnings = " ".join(gate_warnings(weak, n_seeds=1))
    assert "Undertrained SAEs" in warnings and "EV 0.780" in warnings and "alive 0.640" in warnings
    assert "fewer than 20 letters (fewest: 18" in warnings
    assert "not calibrated" in warnings and "One seed per condition" in warnings


def test_absorption_gate_section_prints_not_measurable_instead_of_a_number(tmp_path):
    gate = {"absorption_letters_needed": 20, "random_sae_absorption_fraction_score": 0.05}
    records = [
        run_record(
            0.0,
            0,
            l0=16.0,
            absorption_letters_passing=23,
            gated_absorption_fraction_score=0.31,
            gated_k1_full_absorption_score=0.12,
            **gate,
        ),
        run_record(0.3, 0, l0=16.0, absorption_letters_passing=4, mean_absorption_fraction_score=0.8, **gate),
    ]
    files = build_report(records, tmp_path)
    results = json.loads(files.results.read_text())
    report = files.report.read_text()
    rows = {row["run"]: row for row in results["absorption_gate"]}
    assert rows["run-p0.0-k16-s0"]["headline"] == "0.1200"
    assert rows["run-p0.3-k16-s0"]["gated_absorption_fraction_score"] is None
    assert rows["run-p0.3-k16-s0"]["headline"] == "absorption not measurable here"
    assert "| run-p0.3-k16-s0 | 4 / 20 | absorption not measurable here |" in report
    assert "## Absorption gate" in report and "Absorption not measurable here** for 1 of 2 SAEs" in report
    assert "fewer than 20 letters" not in report  # the gate replaces SAEBench's letter count
    assert_report_matches_results(report, results, tmp_path)


def test_absorption_headline_is_the_gated_k1_full_absorption_rate(tmp_path):
    gate = {"absorption_letters_needed": 20, "absorption_letters_passing": 23}
    records = []
    for seed in range(3):
        for k, l0 in ((16, 16.0), (64, 64.0)):
            records.append(
                run_record(
                    0,
                    seed,
                    k=k,
                    l0=l0,
                    gated_k1_full_absorption_score=0.6 - l0 / 200,
                    random_sae_k1_full_absorption_score=0.02,
                    gated_absorption_fraction_score=0.4,
                    **gate,
                )
            )
        records.append(
            run_record(
                0.3,
                seed,
                k=16,
                l0=32.0,
                gated_k1_full_absorption_score=0.2 + 0.01 * seed,
                random_sae_k1_full_absorption_score=0.02,
                gated_absorption_fraction_score=0.4,
                **gate,
            )
        )
    # results written before the k = 1 score existed: measurable, but the headline was not computed
    records.append(
        replace(run_record(0.3, 9, l0=16.0, gated_absorption_fraction_score=0.4, **gate), name="old")
    )
    files = build_report(records, tmp_path)
    results = json.loads(files.results.read_text())
    report = files.report.read_text()

    headline_metrics = [r["metric"] for r in results["headline"] if r["view"] == "matched L0"]
    assert headline_metrics.index("gated_k1_full_absorption_score") < headline_metrics.index(
        "gated_absorption_fraction_score"
    )
    assert "gated_full_absorption_score" not in headline_metrics
    (row,) = [
        r
        for r in results["headline"]
        if r["metric"] == "gated_k1_full_absorption_score" and r["view"] == "matched L0"
    ]
    assert row["verdict"] == "masked lower (better)"
    # baseline at L0 32: halfway in log L0 between 0.52 (L0 16) and 0.28 (L0 64) = 0.4; masked 0.21 on average
    assert row["difference"]["mean"] == pytest.approx(0.21 - 0.4)
    compact = report[report.index("### Matched L0") : report.index("### Same k")]
    k1_label = "absorption: k = 1 full-absorption rate (gated letters) (lower better)"
    fraction_label = (
        "absorption fraction (SAEBench, gated letters; not validated on ground truth) (lower better)"
    )
    assert compact.index(f"| {k1_label} |") < compact.index(f"| {fraction_label} |")

    rows = {row["run"]: row for row in results["absorption_gate"]}
    assert rows["run-p0.3-k16-s1"]["gated_k1_full_absorption_score"] == pytest.approx(0.21)
    assert rows["run-p0.3-k16-s1"]["random_sae_k1_full_absorption_score"] == pytest.approx(0.02)
    assert rows["run-p0.3-k16-s1"]["headline"] == "0.2100"
    assert rows["old"]["headline"] == "not computed" and rows["old"]["gated_k1_full_absorption_score"] is None
    section = report[report.index("## Absorption gate") :]
    assert "`docs/absorption_control/`" in section and "rank-track true absorption" in section
    assert "| run-p0.3-k16-s1 | 23 / 20 | 0.2100 | 0.0200 | 0.4000 |" in section
    assert "| old | 23 / 20 | not computed | — | 0.4000 |" in section
    assert "Absorption not measurable here" not in report
    assert_report_matches_results(report, results, tmp_path)
