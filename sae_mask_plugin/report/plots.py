"""The report's figures (matplotlib, Agg backend): absorption vs L0, OOD gap vs p, masked − baseline differences."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sae_mask_plugin.files import atomic_file  # noqa: E402
from sae_mask_plugin.report.records import METRICS_BY_KEY, RunRecord  # noqa: E402
from sae_mask_plugin.report.stats import PairedComparison, Summary  # noqa: E402


def _save_atomic(figure: plt.Figure, path: Path) -> Path:
    try:
        with atomic_file(path, suffix=".png") as staging:
            figure.savefig(staging, dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def _color_for_p(p: float, max_p: float) -> tuple[float, float, float, float]:
    return plt.cm.viridis(0.15 + 0.75 * (p / max_p if max_p else 0.0))


def plot_absorption_vs_l0(records: list[RunRecord], path: Path) -> Path | None:
    """Mean absorption against L0, one point per SAE, baselines as squares and masked runs coloured by p."""
    points = [r for r in records if {"l0", "mean_absorption_fraction_score"} <= r.metrics.keys()]
    if not points:
        return None
    max_p = max(r.mask_p for r in points)
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for p in sorted({r.mask_p for r in points}):
        group = [r for r in points if r.mask_p == p]
        axis.scatter(
            [r.metrics["l0"] for r in group],
            [r.metrics["mean_absorption_fraction_score"] for r in group],
            marker="s" if p == 0 else "o",
            color="black" if p == 0 else _color_for_p(p, max_p),
            label="baseline" if p == 0 else f"masked p={p:g}",
            s=40,
        )
    axis.set_xlabel("L0 (active latents per token)")
    axis.set_ylabel("mean absorption (lower is better)")
    axis.set_title("Feature absorption vs sparsity")
    axis.legend(frameon=False)
    return _save_atomic(figure, path)


def plot_ood_gap_vs_p(records: list[RunRecord], path: Path) -> Path | None:
    """SAE OOD gap (ID − OOD accuracy) against p: mean and 95% interval over seeds, one line per SAE shape."""
    by_shape: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if "sae_ood_gap" in record.metrics:
            shape = f"{record.architecture} w{record.d_sae}" + (f" k{record.k}" if record.k else "")
            by_shape[shape][record.mask_p].append(record.metrics["sae_ood_gap"])
    if not by_shape:
        return None
    figure, axis = plt.subplots(figsize=(5.5, 4))
    for shape, by_p in sorted(by_shape.items()):
        ps = sorted(by_p)
        summaries = [Summary.of(by_p[p]) for p in ps]
        means = [s.mean for s in summaries]
        errors = [[s.mean - (s.low if s.low is not None else s.mean) for s in summaries]]
        errors.append([(s.high if s.high is not None else s.mean) - s.mean for s in summaries])
        axis.errorbar(ps, means, yerr=errors, marker="o", capsize=3, label=shape)
    axis.set_xlabel("masking probability p (0 = baseline)")
    axis.set_ylabel("OOD gap: ID − OOD accuracy (lower is better)")
    axis.set_title("OOD gap vs masking probability")
    axis.legend(frameon=False, fontsize=8)
    return _save_atomic(figure, path)


def plot_differences(comparisons: dict[str, list[PairedComparison]], path: Path) -> Path | None:
    """masked − baseline per metric (one panel each), a bar per masked condition with its 95% interval."""
    metrics = sorted(
        {c.metric for cell in comparisons.values() for c in cell}, key=list(METRICS_BY_KEY).index
    )
    if not metrics:
        return None
    columns = 3
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.6 * columns + 2, 0.5 * len(comparisons) * rows + 1.6 * rows),
        squeeze=False,
        sharey=True,
    )
    cells = list(comparisons)
    for axis, metric in zip(axes.flat, metrics, strict=False):
        for row, cell in enumerate(cells):
            found = [c for c in comparisons[cell] if c.metric == metric]
            if not found:
                continue
            difference = found[0].difference
            error = None
            if difference.low is not None and difference.high is not None:
                error = [[difference.mean - difference.low], [difference.high - difference.mean]]
            axis.barh(row, difference.mean, xerr=error, capsize=3, color="tab:blue" if error else "tab:gray")
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_yticks(range(len(cells)), cells, fontsize=7)
        spec = METRICS_BY_KEY[metric]
        better = {True: " (higher better)", False: " (lower better)", None: ""}[spec.higher_is_better]
        axis.set_title(f"Δ {spec.label}{better}", fontsize=8)
    for axis in list(axes.flat)[len(metrics) :]:
        axis.axis("off")
    figure.suptitle(
        "masked − baseline (bars: mean over paired seeds; whiskers: 95% interval; grey: one pair)"
    )
    figure.tight_layout()
    return _save_atomic(figure, path)
