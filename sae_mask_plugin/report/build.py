"""Build the baseline-vs-masked report: `report.md`, `results.json` and PNG plots, from `RunRecord`s.

Masked runs are paired with the baseline run of the same pairing key (same model, hook, architecture, width, k,
tokens and seed). Each masked condition × SAE shape is one comparison cell; every metric gets the paired mean
difference, its 95% interval, a paired t-test and a Benjamini-Hochberg q-value over every test of the report,
and a verdict that claims an effect only when the interval excludes zero (flagged when q >= 0.05).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sae_mask_plugin.files import write_json_atomic, write_text_atomic
from sae_mask_plugin.report import plots
from sae_mask_plugin.report.records import METRICS, METRICS_BY_KEY, RunRecord
from sae_mask_plugin.report.stats import PairedComparison, false_discovery_control

REPORT_FILE = "report.md"
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class ReportFiles:
    """Paths of what `build_report` wrote."""

    report: Path
    results: Path
    plots: list[Path]


def _shape(record: RunRecord) -> str:
    return f"{record.architecture} w{record.d_sae}" + (f" k{record.k}" if record.k else "")


def paired_comparisons(records: list[RunRecord]) -> dict[str, list[PairedComparison]]:
    """Comparison cells `"<condition> | <shape>"` → one `PairedComparison` per metric with paired values."""
    baselines = {r.pairing_key: r for r in records if r.is_baseline}
    pairs: dict[str, list[tuple[RunRecord, RunRecord]]] = defaultdict(list)
    for masked in sorted((r for r in records if not r.is_baseline), key=lambda r: (r.mask_p, r.name)):
        baseline = baselines.get(masked.pairing_key)
        if baseline is not None:
            pairs[f"{masked.condition} | {_shape(masked)}"].append((baseline, masked))
    comparisons: dict[str, list[PairedComparison]] = {}
    for cell, cell_pairs in pairs.items():
        comparisons[cell] = []
        for spec in METRICS:
            both = [(b, m) for b, m in cell_pairs if spec.key in b.metrics and spec.key in m.metrics]
            if both:
                comparisons[cell].append(
                    PairedComparison.of(
                        spec.key,
                        [b.metrics[spec.key] for b, _ in both],
                        [m.metrics[spec.key] for _, m in both],
                        spec.higher_is_better,
                    )
                )
    adjusted = iter(false_discovery_control([c for cell in comparisons.values() for c in cell]))
    return {
        cell: [next(adjusted) for _ in cell_comparisons] for cell, cell_comparisons in comparisons.items()
    }


def _settings(records: list[RunRecord]) -> dict[str, list[Any]]:
    def distinct(values) -> list[Any]:
        return sorted({v for v in values if v is not None}, key=str)

    return {
        "models": distinct(r.model_name for r in records),
        "hooks": distinct(r.hook_name for r in records),
        "architectures": distinct(r.architecture for r in records),
        "widths": distinct(r.d_sae for r in records),
        "k": distinct(r.k for r in records),
        "training_tokens": distinct(r.training_tokens for r in records),
        "seeds": distinct(r.seed for r in records),
        "masking_p": distinct(r.mask_p for r in records),
        "mask_tokens": distinct(r.mask_token for r in records),
    }


def _format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _comparison_rows(cell_comparisons: list[PairedComparison]) -> list[str]:
    rows = [
        "| metric | baseline | masked | masked − baseline [95% CI] | paired p | q (FDR) | n pairs | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cell_comparisons:
        p_value, q_value = ("—" if value is None else f"{value:.3g}" for value in (c.p_value, c.q_value))
        rows.append(
            f"| {METRICS_BY_KEY[c.metric].label} | {c.baseline.format(4)} | {c.masked.format(4)} | "
            f"{c.difference.format(4)} | {p_value} | {q_value} | {c.difference.n} | {c.verdict} |"
        )
    return rows


def _runs_table(records: list[RunRecord]) -> list[str]:
    metric_keys = [spec.key for spec in METRICS if any(spec.key in r.metrics for r in records)]
    header = ["run", "condition", "seed", *(METRICS_BY_KEY[k].label for k in metric_keys)]
    rows = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    for r in sorted(records, key=lambda r: (_shape(r), r.mask_p, r.seed if r.seed is not None else -1)):
        values = [_format_value(r.metrics.get(k)) for k in metric_keys]
        rows.append(f"| {r.name} | {r.condition} | {r.seed} | {' | '.join(values)} |")
    return rows


def _markdown(
    records: list[RunRecord],
    comparisons: dict[str, list[PairedComparison]],
    settings: dict[str, list[Any]],
    plot_files: list[Path],
) -> str:
    n_seeds = len(settings["seeds"])
    lines = ["# Masked regularization: baseline vs masked SAEs", "", "## Setup", ""]
    lines += [
        f"- **{key.replace('_', ' ')}**: {', '.join(map(str, values)) or '—'}"
        for key, values in settings.items()
    ]
    lines += [f"- **SAEs**: {len(records)} ({sum(r.is_baseline for r in records)} baseline)", ""]
    if n_seeds < 2:
        lines += [
            "> One seed per condition: no interval is available, so no difference below can be called an effect.",
            "",
        ]
    n_tests = sum(c.q_value is not None for cell in comparisons.values() for c in cell)
    multiplicity = (
        f"This report runs {n_tests} paired tests, so about {n_tests / 20:.1f} intervals would exclude zero by "
        "chance alone: q is the Benjamini-Hochberg q-value over all of them, and a verdict with q ≥ 0.05 is "
        "marked as not significant after FDR correction. "
        if n_tests
        else ""
    )
    lines += [
        "Verdicts claim an effect only when the paired 95% interval of masked − baseline excludes zero. "
        f"{multiplicity}Metrics on clean held-out text; absorption is SAEBench's first-letter absorption; OOD "
        "metrics average the sae-probes OOD tasks.",
        "",
        "## Comparisons",
        "",
    ]
    if not comparisons:
        lines += ["No masked run has a paired baseline (same model, hook, shape, tokens and seed).", ""]
    for cell, cell_comparisons in comparisons.items():
        lines += [f"### {cell}", "", *_comparison_rows(cell_comparisons), ""]
    lines += ["## Every run", "", *_runs_table(records), "", "## Plots", ""]
    lines += [f"![{path.stem}]({path.name})" for path in plot_files]
    return "\n".join(lines) + "\n"


def build_report(records: list[RunRecord], out_dir: str | Path) -> ReportFiles:
    """Write `report.md`, `results.json` and the plots into `out_dir` (each written atomically)."""
    if not records:
        raise ValueError("no SAEs to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    comparisons = paired_comparisons(records)
    settings = _settings(records)
    candidates = [
        plots.plot_absorption_vs_l0(records, out_dir / "absorption_vs_l0.png"),
        plots.plot_ood_gap_vs_p(records, out_dir / "ood_gap_vs_p.png"),
        plots.plot_differences(comparisons, out_dir / "differences.png"),
    ]
    plot_files = [path for path in candidates if path is not None]
    results = {
        "settings": settings,
        "runs": [r.to_dict() for r in records],
        "comparisons": {
            cell: [{**asdict(c), "verdict": c.verdict} for c in cell_comparisons]
            for cell, cell_comparisons in comparisons.items()
        },
        "plots": [path.name for path in plot_files],
    }
    results_path = out_dir / RESULTS_FILE
    write_json_atomic(results_path, results)
    report_path = out_dir / REPORT_FILE
    write_text_atomic(report_path, _markdown(records, comparisons, settings, plot_files))
    return ReportFiles(report_path, results_path, plot_files)
