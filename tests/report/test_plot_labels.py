"""The report's plots say what they show: the L0 axis names the core eval, one-seed plots promise no intervals or
bands, and the difference panels' tick labels do not collide."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from report_checks import run_record

import sae_mask_plugin.report.plots as plots
from research.study_pages import records_from_results
from sae_mask_plugin.report.matching import compare_pairs, matched_l0_comparisons, same_k_pairs
from sae_mask_plugin.report.records import RunRecord

FIRST_EDITION = (
    Path(__file__).resolve().parents[2] / "docs" / "smollm2_study" / "first_edition" / "results.json"
)


def _records(seeds: int) -> list[RunRecord]:
    records = []
    for seed in range(seeds):
        for p in (0.0, 0.3):
            for k in (16, 64):
                records.append(
                    run_record(
                        p,
                        seed,
                        k,
                        l0=1.4 * k - 10 * p,
                        explained_variance=0.8 + k / 1000 - p / 10 + seed / 300,
                        mse=123.456 + 7.89 * seed + 40 * p,
                        sae_ood_accuracy=0.7 - p / 10 + seed / 200,
                        oracle_ood_accuracy=0.8,
                    )
                )
    return records


@pytest.fixture
def figures(monkeypatch) -> dict[str, object]:
    """The figures the plot functions draw, by file name, kept open for inspection."""
    drawn: dict[str, object] = {}

    def keep(figure, path: Path) -> Path:
        figure.canvas.draw()
        drawn[path.name] = figure
        return path

    monkeypatch.setattr(plots, "_save_atomic", keep)
    return drawn


def test_the_l0_axis_names_the_core_eval_and_one_seed_titles_promise_no_bands(figures, tmp_path):
    records = _records(seeds=1)
    plots.plot_frontiers(records, tmp_path / "metrics_vs_l0.png")
    plots.plot_ood_accuracy_vs_p(records, tmp_path / "ood.png")
    comparisons = compare_pairs(same_k_pairs(records), include_reference=False)
    plots.plot_differences(comparisons, tmp_path / "differences.png", matched_l0=False)
    frontier = figures["metrics_vs_l0.png"]
    assert "core eval" in frontier.axes[0].get_xlabel()
    titles = {name: figure._suptitle.get_text() for name, figure in figures.items()}
    assert "mean over seeds" not in titles["metrics_vs_l0.png"] and "one seed" in titles["metrics_vs_l0.png"]
    assert "interval" not in titles["ood.png"] and "band" in titles["ood.png"]  # "no band: one seed"
    assert "95% interval" not in titles["differences.png"] and "one pair" in titles["differences.png"]


def test_difference_panel_tick_labels_do_not_collide(figures, tmp_path):
    """On the first edition's numbers, where the OOD panels once printed `−0.050−0.025 0.000`."""
    records = records_from_results(json.loads(FIRST_EDITION.read_text()))
    comparisons, _ = matched_l0_comparisons(records)
    plots.plot_differences(comparisons, tmp_path / "differences.png", matched_l0=True)
    figure = figures["differences.png"]
    assert "95% interval" in figure._suptitle.get_text()
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        boxes = [label.get_window_extent(renderer) for label in axis.get_xticklabels() if label.get_text()]
        assert len(boxes) >= 2
        assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:], strict=False)), (
            axis.get_title()
        )


def test_a_loss_variant_is_drawn_apart_from_its_p_and_the_legend_sits_below_the_panels(figures, tmp_path):
    records = _records(seeds=1)
    records += [
        replace(r, name=f"{r.name}-unmasked", loss_positions="unmasked") for r in records if not r.is_baseline
    ]
    plots.plot_frontiers(records, tmp_path / "metrics_vs_l0.png")
    figure = figures["metrics_vs_l0.png"]
    styles = {
        line.get_label(): (line.get_linestyle(), line.get_marker())
        for line in figure.axes[0].get_lines()
        if not line.get_label().startswith("_")
    }
    assert [style for label, style in styles.items() if "unmasked-loss" in label] == [("--", "^")]
    assert [style for label, style in styles.items() if "p=0.3 token (" in label] == [("-", "o")]
    renderer = figure.canvas.get_renderer()
    legend_top = figure.legends[0].get_window_extent(renderer).y1
    panels = [axis for axis in figure.axes if axis.get_lines()]
    assert all(legend_top < axis.get_tightbbox(renderer).y0 for axis in panels)
