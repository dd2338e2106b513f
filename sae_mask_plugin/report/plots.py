"""The report's figures (matplotlib, Agg backend): metrics vs L0 frontiers, OOD accuracy vs p with the oracle's,
and masked − baseline differences."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from statistics import mean

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

from sae_mask_plugin.files import atomic_file  # noqa: E402
from sae_mask_plugin.report.records import KEY_METRICS, METRICS_BY_KEY, RunRecord, better_label  # noqa: E402
from sae_mask_plugin.report.statements import shared_words, short_cell_labels  # noqa: E402
from sae_mask_plugin.report.stats import PairedComparison, Summary  # noqa: E402


def _save_atomic(figure: plt.Figure, path: Path) -> Path:
    try:
        with atomic_file(path, suffix=".png") as staging:
            figure.savefig(staging, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


LEGEND_ROW_INCHES = 0.1155  # one row of an 8-pt figure legend below the panels, with its spacing


OOD_PANELS = (
    ("sae_id_accuracy", "oracle_id_accuracy", "ID accuracy"),
    ("sae_ood_accuracy", "oracle_ood_accuracy", "OOD accuracy"),
    ("sae_ood_gap", "oracle_ood_gap", "OOD gap: ID − OOD (lower better)"),
)


def _color_for_p(p: float, max_p: float) -> tuple[float, float, float, float]:
    """Black for the baseline; masked runs from orange (small p) to dark purple (the largest p)."""
    if p == 0:
        return (0.0, 0.0, 0.0, 1.0)
    return plt.cm.plasma(0.75 - 0.6 * (p / max_p if max_p else 0.0))


def _line_style(record: RunRecord) -> dict[str, str]:
    """Baselines squares; masked runs circles, dashed with triangles when only unmasked positions enter the loss
    (so a loss variant stays apart from the runs of the same p, which share its colour)."""
    if record.is_baseline:
        return {"marker": "s", "linestyle": "-"}
    return (
        {"marker": "o", "linestyle": "-"}
        if record.loss_positions == "all"
        else {"marker": "^", "linestyle": "--"}
    )


def _condition_label(record: RunRecord) -> str:
    return "baseline" if record.is_baseline else f"masked {record.condition}"


def _grid(n_panels: int, columns: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    rows = -(-n_panels // columns)
    columns = min(columns, n_panels)
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False)
    flat = list(axes.flat)
    for axis in flat[n_panels:]:
        axis.axis("off")
    return figure, flat[:n_panels]


def plot_frontiers(records: list[RunRecord], path: Path) -> Path | None:
    """Each metric against L0 (log axis), baseline vs masked: one faint line per seed through its k values, the
    mean over seeds (mean L0, mean metric at each k) bold."""
    with_l0 = [r for r in records if "l0" in r.metrics and r.metrics["l0"] > 0]
    metrics = [key for key in KEY_METRICS if any(key in r.metrics for r in with_l0)]
    if not metrics:
        return None
    max_p = max(r.mask_p for r in with_l0)
    figure, axes = _grid(len(metrics), 3, 4.2, 3.3)
    for axis, key in zip(axes, metrics, strict=True):
        runs = [r for r in with_l0 if key in r.metrics]
        lines: dict[tuple, list[RunRecord]] = defaultdict(list)
        for r in runs:
            lines[(r.condition, r.architecture, r.d_sae, r.curve_key)].append(r)
        for line in lines.values():
            line.sort(key=lambda r: r.metrics["l0"])
            axis.plot(
                [r.metrics["l0"] for r in line],
                [r.metrics[key] for r in line],
                color=_color_for_p(line[0].mask_p, max_p),
                linestyle=_line_style(line[0])["linestyle"],
                alpha=0.25,
                linewidth=1,
            )
        conditions: dict[tuple, dict[int | None, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            conditions[(r.mask_p, r.condition, r.architecture, r.d_sae)][r.k].append(r)
        for (p, _, architecture, d_sae), by_k in sorted(conditions.items(), key=lambda item: item[0][:2]):
            ks = sorted(by_k, key=lambda k: k or 0)
            axis.plot(
                [mean(r.metrics["l0"] for r in by_k[k]) for k in ks],
                [mean(r.metrics[key] for r in by_k[k]) for k in ks],
                color=_color_for_p(p, max_p),
                **_line_style(by_k[ks[0]][0]),
                linewidth=2,
                label=f"{_condition_label(by_k[ks[0]][0])} ({architecture} w{d_sae})",
            )
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(FixedLocator(_baseline_l0_ticks(runs)))
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.margins(x=0.08, y=0.12)
        axis.set_xlabel("core eval L0 (log; ticks: baselines' mean L0 per k)", fontsize=8)
        axis.set_title(better_label(METRICS_BY_KEY[key]), fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), frameon=False, fontsize=8)
    several_seeds = len({r.seed for r in with_l0}) > 1
    figure.suptitle(
        "Metrics vs L0: faint lines one seed each, bold the mean over seeds"
        if several_seeds
        else "Metrics vs L0 (one seed: each line is one SAE per k)"
    )
    legend_rows = -(-len(labels) // 3)
    legend_height = legend_rows * LEGEND_ROW_INCHES / figure.get_figheight()
    figure.tight_layout(rect=(0, 0.02 + legend_height, 1, 1))
    return _save_atomic(figure, path)


def _baseline_l0_ticks(runs: list[RunRecord]) -> list[float]:
    """The baselines' mean L0 at each k, rounded (every run's mean L0 per k when there is no baseline)."""
    chosen = [r for r in runs if r.is_baseline] or runs
    by_k: dict[int | None, list[float]] = defaultdict(list)
    for r in chosen:
        by_k[r.k].append(r.metrics["l0"])
    return sorted({round(mean(values), 1 if mean(values) < 10 else 0) for values in by_k.values()})


def plot_ood_accuracy_vs_p(records: list[RunRecord], path: Path) -> Path | None:
    """SAE probes' ID accuracy, OOD accuracy and OOD gap against p (mean over seeds, 95% interval where there
    are several seeds), one line per SAE shape, with the dense oracle probe's own values as dashed lines."""
    runs = [r for r in records if "sae_ood_accuracy" in r.metrics]
    if not runs:
        return None
    figure, axes = _grid(len(OOD_PANELS), 3, 4.2, 3.3)
    banded = False
    for axis, (sae_key, oracle_key, title) in zip(axes, OOD_PANELS, strict=True):
        by_shape: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            if sae_key in r.metrics:
                by_shape[r.shape][r.mask_p].append(r.metrics[sae_key])
        for shape, by_p in sorted(by_shape.items()):
            ps = sorted(by_p)
            summaries = [Summary.of(by_p[p]) for p in ps]
            line = axis.plot(ps, [s.mean for s in summaries], marker="o", label=f"SAE {shape}")[0]
            if all(s.low is not None and s.high is not None for s in summaries):
                banded = True
                axis.fill_between(
                    ps,
                    [s.low for s in summaries],
                    [s.high for s in summaries],
                    color=line.get_color(),
                    alpha=0.15,
                )
        oracle = [r.metrics[oracle_key] for r in runs if oracle_key in r.metrics]
        if oracle:
            axis.axhline(mean(oracle), color="black", linestyle="--", linewidth=1, label="dense oracle probe")
        axis.margins(x=0.08, y=0.15)
        axis.set_xlabel("masking probability p (0 = baseline)")
        axis.set_title(title, fontsize=9)
    axes[0].legend(frameon=False, fontsize=7)
    figure.suptitle(
        "OOD probing vs masking probability"
        + (" (bands: 95% interval over seeds)" if banded else " (no band: one seed at some p)")
    )
    figure.tight_layout()
    return _save_atomic(figure, path)


def plot_differences(
    comparisons: dict[str, list[PairedComparison]], path: Path, matched_l0: bool
) -> Path | None:
    """masked − baseline per metric (one panel each, centred on zero with symmetric limits): a point per
    comparison cell with its 95% interval; grey points without whiskers are single pairs (no interval)."""
    metrics = sorted(
        {c.metric for cell in comparisons.values() for c in cell}, key=list(METRICS_BY_KEY).index
    )
    if not metrics:
        return None
    cells = list(comparisons)
    labels = short_cell_labels(cells)
    columns = 3
    figure, axes = _grid(len(metrics), columns, 3.4, 0.45 * len(cells) + 1.4)
    drawn = set()
    for index, (axis, metric) in enumerate(zip(axes, metrics, strict=True)):
        extent = 0.0
        for row, cell in enumerate(cells):
            found = [c for c in comparisons[cell] if c.metric == metric]
            if not found:
                continue
            difference = found[0].difference
            if difference.low is not None and difference.high is not None:
                axis.errorbar(
                    difference.mean,
                    row,
                    xerr=[[difference.mean - difference.low], [difference.high - difference.mean]],
                    fmt="o",
                    color="tab:blue",
                    capsize=3,
                )
                extent = max(extent, abs(difference.low), abs(difference.high))
                drawn.add("interval")
            else:
                axis.plot(difference.mean, row, "o", color="tab:gray")
                drawn.add("single")
            extent = max(extent, abs(difference.mean))
        extent = extent * 1.2 if extent > 0 and math.isfinite(extent) else 1.0
        axis.set_xlim(-extent, extent)
        axis.xaxis.set_major_locator(MaxNLocator(nbins=4, symmetric=True))  # few ticks: labels never collide
        axis.tick_params(axis="x", labelsize=7)
        axis.set_ylim(len(cells) - 0.4, -0.6)  # the first cell on top
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_yticks(
            range(len(cells)), [labels[c] for c in cells] if index % columns == 0 else [], fontsize=7
        )
        axis.set_title(f"Δ {better_label(METRICS_BY_KEY[metric])}", fontsize=8)
    view = "at matched L0" if matched_l0 else "at the same k"
    legend = {
        "interval": "blue: mean with 95% interval over paired seeds",
        "single": "grey: one pair, no interval",
    }
    common = shared_words(cells)
    figure.suptitle(
        f"masked − baseline {view}{f', {common}' if common else ''} "
        f"({'; '.join(legend[kind] for kind in legend if kind in drawn)})",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.5 / figure.get_figheight()))  # room for the title
    return _save_atomic(figure, path)
