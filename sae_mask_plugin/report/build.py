"""Build the baseline-vs-masked report: `report.md`, `results.json` and PNG plots, from `RunRecord`s.

The report opens with the gates (is the setting trustworthy?) and a headline of masked − baseline differences at
matched L0 (`matching`), then both comparison views in full (matched L0 first, same k second), every run, the OOD
tasks behind the OOD metrics, and the plots. Every difference has its paired 95% interval, a paired t-test and a
Benjamini-Hochberg q-value within its view; a verdict claims an effect only when the interval excludes zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sae_mask_plugin.files import write_json_atomic, write_text_atomic
from sae_mask_plugin.report import plots
from sae_mask_plugin.report.gates import absorption_gate_lines, absorption_gate_rows, gate_warnings
from sae_mask_plugin.report.matching import Unmatched, compare_pairs, matched_l0_pairs, same_k_pairs
from sae_mask_plugin.report.records import KEY_METRICS, METRICS, METRICS_BY_KEY, RunRecord, better_label
from sae_mask_plugin.report.stats import PairedComparison

REPORT_FILE = "report.md"
RESULTS_FILE = "results.json"

Comparisons = dict[str, list[PairedComparison]]


@dataclass(frozen=True)
class ReportFiles:
    """Paths of what `build_report` wrote."""

    report: Path
    results: Path
    plots: list[Path]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, computed once from the records."""

    records: list[RunRecord]
    matched: Comparisons
    same_k: Comparisons
    unmatched: list[Unmatched]
    settings: dict[str, list[Any]]
    gates: list[str]
    ood_tasks: dict[str, Any] | None

    @property
    def headline(self) -> list[dict[str, Any]]:
        """Headline rows: per cell and key metric, the matched-L0 comparison when it has an interval (>= 2 pairs)
        or as many pairs as the same-k one; else the same-k comparison, saying how many pairs matched."""
        rows = []
        for cell in dict.fromkeys([*self.matched, *self.same_k]):
            matched = {c.metric: c for c in self.matched.get(cell, [])}
            same_k = {c.metric: c for c in self.same_k.get(cell, [])}
            for key in KEY_METRICS:
                chosen, fallback = matched.get(key), same_k.get(key)
                n_matched = 0 if chosen is None else chosen.difference.n
                if chosen is not None and (
                    n_matched >= 2 or fallback is None or fallback.difference.n <= n_matched
                ):
                    rows.append({"cell": cell, "view": "matched L0", "comparison": chosen})
                elif fallback is not None:
                    view = f"same k ({n_matched} of {fallback.difference.n} pairs in L0 range)"
                    rows.append({"cell": cell, "view": view, "comparison": fallback})
        return rows


def paired_comparisons(records: list[RunRecord]) -> Comparisons:
    """Same-k comparison cells `"<condition> | <shape>"` → one `PairedComparison` per metric."""
    return compare_pairs(same_k_pairs(records), include_reference=True)


def _settings(records: list[RunRecord]) -> dict[str, list[Any]]:
    def distinct(values) -> list[Any]:
        return sorted({v for v in values if v is not None}, key=str)

    calibrated = [r for r in records if r.is_calibrated]
    tokens = distinct((r.calibration or {}).get("calibration_tokens") for r in calibrated)
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
        "thresholds": [
            f"calibrated to L0 = k on {', '.join(map(str, tokens))} clean tokens for {len(calibrated)} of "
            f"{len(records)} SAEs"
            if calibrated
            else "as learned in training (not calibrated)"
        ],
    }


def _ood_tasks(records: list[RunRecord]) -> dict[str, Any] | None:
    """The OOD eval's headline and excluded tasks (the same for every SAE of one model and hook)."""
    found = [r.ood_tasks for r in records if r.ood_tasks]
    return found[0] if found else None


def collect_report_data(records: list[RunRecord]) -> ReportData:
    """Compute both comparison views, the gates and the settings of `records`."""
    matched_pairs, unmatched = matched_l0_pairs(records)
    settings = _settings(records)
    return ReportData(
        records=records,
        matched=compare_pairs(matched_pairs, include_reference=False),
        same_k=paired_comparisons(records),
        unmatched=unmatched,
        settings=settings,
        gates=gate_warnings(records, len(settings["seeds"])),
        ood_tasks=_ood_tasks(records),
    )


def _table_text(text: str) -> str:
    """`text` safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def _format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _format_p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _comparison_rows(cell_comparisons: list[PairedComparison], baseline_label: str) -> list[str]:
    rows = [
        f"| metric | {baseline_label} | masked | masked − baseline [95% CI] | paired p | q (FDR) | n pairs | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cell_comparisons:
        rows.append(
            f"| {better_label(METRICS_BY_KEY[c.metric])} | {c.baseline.format(4)} | {c.masked.format(4)} | "
            f"{c.difference.format(4)} | {_format_p(c.p_value)} | {_format_p(c.q_value)} | {c.difference.n} | "
            f"{c.verdict} |"
        )
    return rows


def _headline_lines(data: ReportData) -> list[str]:
    lines = ["## Headline", ""]
    rows = data.headline
    if not rows:
        return [*lines, "No masked run has a paired baseline (same model, hook, shape, tokens and seed).", ""]
    lines += [
        "masked − baseline per comparison cell, at matched L0 where the cell has one (the baseline's metric "
        "interpolated in log L0 at the masked SAE's L0, same seed), else at the same k:",
        "",
        "| cell | view | metric | masked − baseline [95% CI] | n pairs | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row["comparison"]
        lines.append(
            f"| {_table_text(row['cell'])} | {row['view']} | {better_label(METRICS_BY_KEY[c.metric])} | {c.difference.format(4)} "
            f"| {c.difference.n} | {c.verdict} |"
        )
    lines += ["", _ood_sentence(data.ood_tasks), ""]
    return lines


def _ood_sentence(ood_tasks: dict[str, Any] | None) -> str:
    if not ood_tasks:
        return "OOD metrics: the OOD eval did not run or recorded no task selection."
    used = ood_tasks.get("headline_tasks") or []
    excluded = ood_tasks.get("excluded_tasks") or {}
    used_text = (
        ", ".join(used) if used else "none (no task has OOD signal: the OOD headline metrics are empty)"
    )
    return (
        f"OOD metrics average the tasks where the dense oracle probe shows OOD signal: {used_text}; "
        f'{len(excluded)} tasks left out (see "OOD tasks").'
    )


def _how_to_read() -> list[str]:
    return [
        "## How to read this report",
        "",
        "- **Gates first.** The warnings above say when the SAEs are undertrained, when absorption rests on too "
        "few letters, when thresholds were not calibrated, or when there is one seed: differences are then weak "
        "evidence whatever their sign.",
        "- **Matched L0 is the fair view.** Masking changes how many latents an SAE fires at a given k; "
        "absorption and probing depend on L0 themselves. Each masked SAE is compared with its own seed's "
        "baseline interpolated to the same L0 (linear in log L0 between baseline k values; never extrapolated: "
        "masked SAEs outside the baseline's L0 range are listed, not compared). Same-k rows are a second view.",
        "- **Verdicts.** An effect is claimed only when the paired 95% interval of masked − baseline excludes "
        "zero; q is the Benjamini-Hochberg q-value within the view, and a verdict with q ≥ 0.05 says so. Each "
        "metric's label says which direction is better.",
        "- **Reference rows** (L0, letters evaluated, dense and oracle probes) describe the setting, not the SAE.",
        "",
    ]


def _runs_table(records: list[RunRecord]) -> list[str]:
    metric_keys = [spec.key for spec in METRICS if any(spec.key in r.metrics for r in records)]
    header = ["run", "condition", "seed", "calibrated", *(METRICS_BY_KEY[k].label for k in metric_keys)]
    rows = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    for r in sorted(records, key=lambda r: (r.architecture, r.d_sae, r.k or 0, r.mask_p, r.seed or 0)):
        values = [_format_value(r.metrics.get(k)) for k in metric_keys]
        rows.append(
            f"| {r.name} | {r.condition} | {r.seed} | {'yes' if r.is_calibrated else 'no'} | {' | '.join(values)} |"
        )
    return rows


def _ood_task_lines(ood_tasks: dict[str, Any] | None) -> list[str]:
    if not ood_tasks:
        return []
    lines = ["## OOD tasks", "", "| task | in the OOD headline | why not |", "|---|---|---|"]
    for task in ood_tasks.get("headline_tasks") or []:
        lines.append(f"| {task} | yes | |")
    for task, reason in (ood_tasks.get("excluded_tasks") or {}).items():
        lines.append(f"| {task} | no | {reason} |")
    return [*lines, ""]


def _markdown(data: ReportData, plot_files: list[Path]) -> str:
    lines = ["# Masked regularization: baseline vs masked SAEs", ""]
    lines += [f"> ⚠ {warning}\n>" for warning in data.gates]
    if data.gates:
        lines.append("")
    lines += _headline_lines(data)
    lines += ["## Setup", ""]
    lines += [
        f"- **{key.replace('_', ' ')}**: {', '.join(map(str, values)) or '—'}"
        for key, values in data.settings.items()
    ]
    lines += [f"- **SAEs**: {len(data.records)} ({sum(r.is_baseline for r in data.records)} baseline)", ""]
    lines += _how_to_read()
    n_matched = sum(c.q_value is not None for cell in data.matched.values() for c in cell)
    n_same_k = sum(c.q_value is not None for cell in data.same_k.values() for c in cell)
    lines += [
        "## Matched-L0 comparisons",
        "",
        f"{n_matched} paired tests (about {n_matched / 20:.1f} intervals would exclude zero by chance alone). "
        "Baseline column: the paired baseline interpolated at the masked SAE's L0.",
        "",
    ]
    if not data.matched:
        lines += [
            "No masked SAE could be matched in L0 (each needs its seed's baseline at ≥ 2 values of k).",
            "",
        ]
    for cell, cell_comparisons in data.matched.items():
        lines += [f"### {cell}", "", *_comparison_rows(cell_comparisons, "baseline at matched L0"), ""]
    if data.unmatched:
        lines += ["Not matched (compared at the same k only):", ""]
        lines += [f"- {u.run} ({u.cell}): {u.reason}" for u in data.unmatched]
        lines.append("")
    lines += [
        "## Same-k comparisons",
        "",
        f"{n_same_k} paired tests. Masked SAEs and baselines of the same k and seed; the L0 row shows how far "
        "their sparsity differs.",
        "",
    ]
    if not data.same_k:
        lines += ["No masked run has a paired baseline (same model, hook, shape, tokens and seed).", ""]
    for cell, cell_comparisons in data.same_k.items():
        lines += [f"### {cell}", "", *_comparison_rows(cell_comparisons, "baseline"), ""]
    lines += ["## Every run", "", *_runs_table(data.records), ""]
    lines += absorption_gate_lines(absorption_gate_rows(data.records))
    lines += _ood_task_lines(data.ood_tasks)
    lines += ["## Plots", ""]
    lines += [f"![{path.stem}]({path.name})" for path in plot_files]
    return "\n".join(lines) + "\n"


def _comparisons_json(comparisons: Comparisons) -> dict[str, list[dict[str, Any]]]:
    return {
        cell: [{**asdict(c), "verdict": c.verdict} for c in cell_comparisons]
        for cell, cell_comparisons in comparisons.items()
    }


def build_report(records: list[RunRecord], out_dir: str | Path) -> ReportFiles:
    """Write `report.md`, `results.json` and the plots into `out_dir` (each written atomically)."""
    if not records:
        raise ValueError("no SAEs to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect_report_data(records)
    candidates = [
        plots.plot_frontiers(records, out_dir / "metrics_vs_l0.png"),
        plots.plot_ood_accuracy_vs_p(records, out_dir / "ood_accuracy_vs_p.png"),
        plots.plot_differences(data.matched or data.same_k, out_dir / "differences.png", bool(data.matched)),
    ]
    plot_files = [path for path in candidates if path is not None]
    results = {
        "settings": data.settings,
        "gates": data.gates,
        "headline": [
            {
                "cell": row["cell"],
                "view": row["view"],
                **asdict(row["comparison"]),
                "verdict": row["comparison"].verdict,
            }
            for row in data.headline
        ],
        "ood_tasks": data.ood_tasks,
        "absorption_gate": absorption_gate_rows(records),
        "runs": [r.to_dict() for r in records],
        "matched_l0_comparisons": _comparisons_json(data.matched),
        "unmatched": [asdict(u) for u in data.unmatched],
        "same_k_comparisons": _comparisons_json(data.same_k),
        "plots": [path.name for path in plot_files],
    }
    results_path = out_dir / RESULTS_FILE
    write_json_atomic(results_path, results)
    report_path = out_dir / REPORT_FILE
    write_text_atomic(report_path, _markdown(data, plot_files))
    return ReportFiles(report_path, results_path, plot_files)
