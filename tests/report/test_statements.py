"""Statements generated from the numbers: the alternative interpolation, verdicts that depend on it, FDR per view,
the compact headline and short cell labels (the study pages' blocks: tests/research/test_study_pages.py)."""

from __future__ import annotations

import math

import pytest
from report_checks import run_record

from sae_mask_plugin.report.build import build_report, paired_comparisons
from sae_mask_plugin.report.matching import interpolate_in_log_l0, matched_l0_comparisons
from sae_mask_plugin.report.records import RunRecord
from sae_mask_plugin.report.statements import short_cell_labels


def test_quadratic_interpolation_is_exact_on_a_parabola_in_log_l0_and_never_extrapolates():
    def parabola(l0: float) -> float:
        return (math.log(l0) - 3) ** 2

    points = [(l0, parabola(l0)) for l0 in (10, 30, 90, 270)]
    assert interpolate_in_log_l0(points, 50, "quadratic") == pytest.approx(parabola(50))
    assert interpolate_in_log_l0(points, 50, "linear") != pytest.approx(parabola(50))
    two = points[:2]
    assert interpolate_in_log_l0(two, 20, "quadratic") == interpolate_in_log_l0(two, 20, "linear")
    assert interpolate_in_log_l0(points, 300, "quadratic") is None
    with pytest.raises(ValueError, match="interpolation"):
        interpolate_in_log_l0(points, 50, "cubic")  # type: ignore[arg-type]


def _curved_records(offsets: list[float]) -> list[RunRecord]:
    """Baselines on a curve that bends between L0 16 and 64, masked SAEs at L0 24, between the two curves."""
    records = []
    for seed, offset in enumerate(offsets):
        for k, value in ((16, 0.60), (32, 0.80), (64, 0.84)):
            records.append(run_record(0, seed, k, l0=float(k), explained_variance=value))
        records.append(run_record(0.3, seed, 32, l0=24.0, explained_variance=0.726 + offset))
    return records


def test_a_verdict_the_two_interpolations_read_differently_says_it_depends_on_interpolation():
    comparisons, _ = matched_l0_comparisons(_curved_records([0.0, 0.004, -0.003, 0.002]))
    (comparison,) = comparisons["p=0.3 token | batchtopk w256 k32"]
    alternative = comparison.alternative
    assert alternative is not None and alternative.q_value is not None
    # linear in log L0 at 24: 0.60 + 0.2 * log2(1.5) = 0.717 (masked higher); the parabola is above 0.726 (lower)
    assert comparison.baseline.mean == pytest.approx(0.60 + 0.2 * math.log2(1.5))
    assert alternative.baseline.mean > comparison.baseline.mean + 0.01
    assert comparison.single_verdict != alternative.single_verdict
    assert comparison.verdict.startswith("depends on interpolation (linear in log L0: ")
    assert comparison.to_dict()["alternative"]["verdict"] == alternative.single_verdict


def test_the_report_headline_is_one_compact_table_per_view_with_verdicts_above_and_appendix_after(tmp_path):
    records = _curved_records([0.0, 0.004, -0.003])
    records += [run_record(0.5, 0, 32, l0=24.0, explained_variance=0.7)]  # a single pair: its own table
    report = build_report(records, tmp_path, notices=["**Partial**: a notice"]).report.read_text()
    lines = report.splitlines()
    assert lines[0] == "> **Partial**: a notice"
    headline = report[report.index("## Headline") : report.index("## Setup")]
    assert (
        "- **Matched L0**: 1 paired test, Benjamini-Hochberg within this view: none survives FDR" in headline
    )
    assert (
        "  - Depends on interpolation: explained variance (higher better) at p=0.3 (baselines below the training "
        "gate) (linear in log L0: " in headline
    )
    assert "Every cell here rests on baselines below the training gate (explained variance ≥ 0.85" in headline
    assert "- **Same k**: 2 paired tests, Benjamini-Hochberg within this view: 2 survive FDR" in headline
    assert headline.index("- **Matched L0**") < headline.index("### Matched L0 (token batchtopk w256 k32)")
    assert "| metric | p=0.3 |" in headline and "| metric | p=0.5 |" in headline
    assert "Single pairs (one seed: no interval, no verdict):" in headline
    assert "| explained variance (higher better) |" in headline
    assert report.index("## Plots") < report.index("## Appendix A: matched-L0 comparisons")
    assert report.index("## Appendix B: same-k comparisons") < report.index("## Appendix C: every run")


def test_short_cell_labels_drop_the_words_every_cell_shares():
    cells = [
        "p=0.3 token | batchtopk w256 k32",
        "p=0.3 token | batchtopk w256 k64",
        "p=0.1 token | batchtopk w256 k32",
    ]
    assert list(short_cell_labels(cells).values()) == ["p=0.3 k32", "p=0.3 k64", "p=0.1 k32"]


def _gated_grid(letters_passing: int | None) -> list[RunRecord]:
    """Baselines at k 16 / 32 / 64 and masked p 0.3 k 32 SAEs over three seeds, with SAEBench's ungated absorption
    and, unless `letters_passing` is None, the signal gate's letter count (20 needed)."""
    gate = {} if letters_passing is None else {"absorption_letters_passing": letters_passing}
    gate |= {"absorption_letters_needed": 20} if gate else {}
    records = []
    for seed, offset in enumerate((0.0, 0.01, -0.01)):
        for k, value in ((16, 0.60), (32, 0.70), (64, 0.80)):
            records.append(run_record(0, seed, k, l0=float(k), mean_absorption_fraction_score=value, **gate))
        records.append(
            run_record(0.3, seed, 32, l0=24.0, mean_absorption_fraction_score=0.5 + offset, **gate)
        )
    return records


@pytest.mark.parametrize(("letters_passing", "tested"), [(4, False), (22, True), (None, True)])
def test_ungated_absorption_is_tested_only_where_the_gate_finds_it_measurable(letters_passing, tested):
    records = _gated_grid(letters_passing)
    matched, _ = matched_l0_comparisons(records)
    for view in (matched, paired_comparisons(records)):
        metrics = {c.metric for cell in view.values() for c in cell}
        assert ("mean_absorption_fraction_score" in metrics) is tested
