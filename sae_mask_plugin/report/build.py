"""Build the baseline-vs-masked report: `report.md`, `results.json` and PNG plots, from `RunRecord`s.

The report opens with any notices (e.g. that it is partial), the gates (is the setting trustworthy?) and a
headline: the verdicts of each view in words, then one compact table per view (rows: metrics with their
direction; columns: comparison cells; single-pair cells apart). Then the setup, how to read it, the plots, and an
appendix with both views in full (matched L0 first, same k second), every run and the OOD tasks. Every difference has its paired 95% interval, a paired t-test and a
Benjamini-Hochberg q-value within its view; a verdict claims an effect only when the interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from sae_mask_plugin.evals.absorption.letter_set import FIXED_LETTER_METRICS, FixedLetterSet, LetterSetRule
from sae_mask_plugin.files import write_json_atomic, write_text_atomic
from sae_mask_plugin.report import plots
from sae_mask_plugin.report.gates import (
    DEFAULT_TRAINING_GATE,
    TrainingGate,
    absorption_gate_lines,
    absorption_gate_rows,
    absorption_measurable,
    below_training_gate,
    gate_warnings,
    training_gate_note,
    with_gate_margins,
)
from sae_mask_plugin.report.letter_sets import apply_letter_sets, letter_set_lines
from sae_mask_plugin.report.matching import (
    Unmatched,
    baselines_as_compared,
    compare_pairs,
    matched_l0_comparisons,
    same_k_pairs,
)
from sae_mask_plugin.report.records import (
    DUPLICATE_METRICS,
    KEY_METRICS,
    METRICS,
    METRICS_BY_KEY,
    RunRecord,
    better_label,
)
from sae_mask_plugin.report.statements import (
    both_intervals,
    count_tests,
    metric_label,
    plural,
    reading,
    shared_words,
    short_cell_labels,
    view_verdicts,
)
from sae_mask_plugin.report.stats import ALTERNATIVE_INTERPOLATION, PRIMARY_INTERPOLATION, PairedComparison
from sae_mask_plugin.report.study_reference import (
    ReferenceRow,
    StudyReference,
    reference_lines,
    reference_rows,
)

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
    below_gate: dict[str, dict[str, list[str]]]
    """View → cell → its masked runs whose baseline, as compared, is below the training gate (`cells_below_training_gate`)."""
    training_gate: TrainingGate = DEFAULT_TRAINING_GATE
    letter_sets: dict[str, FixedLetterSet] = field(default_factory=dict)
    """Cell label → the absorption letter set its SAEs are scored on (`report.letter_sets`; empty without a rule)."""
    study_reference: StudyReference | None = None
    """A published study whose intervals the report's differences are placed against (`report.study_reference`)."""

    @cached_property
    def reference_rows(self) -> list[ReferenceRow]:
        """The report's differences beside the study's intervals (empty without a reference)."""
        return [] if self.study_reference is None else reference_rows(self.views, self.study_reference)

    @property
    def views(self) -> dict[str, Comparisons]:
        """The comparison views by name, the fair one first."""
        return {"matched L0": self.matched, "same k": self.same_k}

    def headline_cells(self, view: str) -> list[str]:
        """The cells of a view's headline: those whose baselines pass the training gate, or every cell when
        none does (the report's gate warning then says so)."""
        cells = list(self.views[view])
        passing = [cell for cell in cells if cell not in self.below_gate[view]]
        return passing or cells

    @property
    def headline(self) -> list[dict[str, Any]]:
        """Headline rows: per view, headline cell and key metric, the comparison (what the compact tables show)."""
        return [
            {"view": view, "cell": cell, "comparison": c}
            for view, comparisons in self.views.items()
            for cell in self.headline_cells(view)
            for c in comparisons[cell]
            if c.metric in HEADLINE_METRICS[view]
        ]


HEADLINE_METRICS = {"matched L0": KEY_METRICS, "same k": ("l0", *FIXED_LETTER_METRICS, *KEY_METRICS)}
"""The rows of each view's compact headline table (same k also shows how far L0 differs, and absorption on the
fixed letter set where the report has one)."""


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
        "llm_dtypes": distinct(r.llm_dtype for r in records),
        "cpu_models": distinct(r.cpu_model for r in records),
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


def cells_below_training_gate(
    records: list[RunRecord], gate: TrainingGate = DEFAULT_TRAINING_GATE
) -> dict[str, dict[str, list[str]]]:
    """View → cell → the masked runs whose baseline, as the comparison reads it (`baselines_as_compared`), is
    below the training gate; cells where every such baseline passes are absent."""
    return {
        view: {
            cell: failing
            for cell, baselines in cells.items()
            if (failing := [run for run, metrics in baselines.items() if below_training_gate(metrics, gate)])
        }
        for view, cells in baselines_as_compared(records).items()
    }


def collect_report_data(
    records: list[RunRecord],
    letter_set_rule: LetterSetRule | None = None,
    training_gate: TrainingGate = DEFAULT_TRAINING_GATE,
    study_reference: StudyReference | None = None,
) -> ReportData:
    """Compute both comparison views, the gates and the settings of `records`; with `letter_set_rule`, absorption
    on each cell's fixed letter set too (`report.letter_sets`); `training_gate` says when a baseline is trained;
    `study_reference`: a published study to place the differences against."""
    records = with_gate_margins(records, training_gate)
    letter_sets: dict[str, FixedLetterSet] = {}
    if letter_set_rule is not None:
        records, letter_sets = apply_letter_sets(records, letter_set_rule)
    matched, unmatched = matched_l0_comparisons(records)
    settings = _settings(records)
    return ReportData(
        records=records,
        matched=matched,
        same_k=paired_comparisons(records),
        unmatched=unmatched,
        settings=settings,
        gates=gate_warnings(records, len(settings["seeds"]), training_gate),
        ood_tasks=_ood_tasks(records),
        below_gate=cells_below_training_gate(records, training_gate),
        training_gate=training_gate,
        letter_sets=letter_sets,
        study_reference=study_reference,
    )


def _format_value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _format_p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _comparison_rows(cell_comparisons: list[PairedComparison], baseline_label: str) -> list[str]:
    """The long table of one cell: every metric with both arms, the difference (and under the alternative
    interpolation, when there is one), p, q and the verdict."""
    alternative = any(c.alternative is not None for c in cell_comparisons)
    header = ["metric", baseline_label, "masked", "masked − baseline [95% CI]"]
    if alternative:
        header = [
            *header[:3],
            f"masked − baseline [95% CI], {PRIMARY_INTERPOLATION}",
            ALTERNATIVE_INTERPOLATION,
        ]
    header += ["paired p", "q (FDR)", "n pairs", "verdict"]
    rows = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    for c in cell_comparisons:
        values = [better_label(METRICS_BY_KEY[c.metric]), c.baseline.format(4), c.masked.format(4)]
        values.append(c.difference.format(4))
        if alternative:
            values.append("—" if c.alternative is None else c.alternative.difference.format(4))
        q_value = _format_p(c.q_value)
        if c.metric in DUPLICATE_METRICS:
            q_value = f"not in the FDR family (restates {METRICS_BY_KEY[DUPLICATE_METRICS[c.metric]].label})"
        values += [_format_p(c.p_value), q_value, str(c.difference.n), c.verdict]
        rows.append(f"| {' | '.join(values)} |")
    return rows


def _compact_table(
    view: str, comparisons: Comparisons, cells: list[str], labels: dict[str, str]
) -> list[str]:
    """One row per headline metric (with its direction), one column per cell: the difference with its interval
    (and the alternative interpolation's) and a word where the interval excludes zero."""
    lines = [f"| metric | {' | '.join(labels[cell] for cell in cells)} |", f"|---|{'---|' * len(cells)}"]
    for metric in HEADLINE_METRICS[view]:
        entries = []
        for cell in cells:
            found = [c for c in comparisons[cell] if c.metric == metric]
            if not found:
                entries.append("—")
                continue
            word = reading(found[0])
            entries.append(
                both_intervals(found[0]).replace(" (", "<br>(", 1) + (f"<br>{word}" if word else "")
            )
        if any(entry != "—" for entry in entries):
            lines.append(f"| {metric_label(metric)} | {' | '.join(entries)} |")
    return lines


def _headline_lines(data: ReportData) -> list[str]:
    lines = ["## Headline", ""]
    if not data.same_k:
        return [*lines, "No masked run has a paired baseline (same model, hook, shape, tokens and seed).", ""]
    lines += [
        "masked − baseline. **Matched L0**: each masked SAE against its own seed's baseline interpolated to the "
        f"same L0 ({PRIMARY_INTERPOLATION}; the {ALTERNATIVE_INTERPOLATION} interpolation in brackets). "
        "**Same k**: against the baseline of the same k and seed. An effect is claimed only where the 95 % "
        "interval excludes zero; q-values are Benjamini-Hochberg within each view.",
        "",
    ]
    for view, comparisons in data.views.items():
        labels = short_cell_labels(list(comparisons))
        lines += view_verdicts(_title(view), comparisons, labels, data.below_gate[view])
    lines.append("")
    for view, comparisons in data.views.items():
        if not comparisons:
            lines += [f"### {_title(view)}", "", _no_cells_sentence(view), ""]
            continue
        labels = short_cell_labels(list(comparisons))
        common = shared_words(list(comparisons))
        shown = data.headline_cells(view)
        paired = [cell for cell in shown if any(c.difference.n >= 2 for c in comparisons[cell])]
        single = [cell for cell in shown if cell not in paired]
        lines += [f"### {_title(view)}" + (f" ({common})" if common else ""), ""]
        if paired:
            n_pairs = sorted({c.difference.n for cell in paired for c in comparisons[cell]})
            lines += [
                f"Cells with {' / '.join(map(str, n_pairs))} paired seeds, mean [95 % interval]:",
                "",
                *_compact_table(view, comparisons, paired, labels),
                "",
            ]
        if single:
            lines += [
                "Single pairs (one seed: no interval, no verdict):",
                "",
                *_compact_table(view, comparisons, single, labels),
                "",
            ]
        lines += _training_gate_lines(data.below_gate[view], shown, labels, data.training_gate)
    lines += [_ood_sentence(data.ood_tasks), ""]
    return lines


def _training_gate_lines(
    below_gate: dict[str, list[str]], shown: list[str], labels: dict[str, str], training_gate: TrainingGate
) -> list[str]:
    """What the training gate did to a view's headline: the cells it left out, or that every cell is below it."""
    gate = training_gate.describe()
    left_out = [cell for cell in below_gate if cell not in shown]
    if left_out:
        cells = "; ".join(f"{labels[cell]} ({', '.join(below_gate[cell])})" for cell in left_out)
        return [
            f"Left out of this headline, the baseline they are compared with below the training gate ({gate}; "
            f"at matched L0 the baseline interpolated to the masked SAE's L0): {cells}. Their comparisons are in "
            "the appendix; a verdict there marks the gate.",
            "",
        ]
    if below_gate:
        return [
            f"Every cell here rests on baselines below the training gate ({gate}): no verdict is an effect.",
            "",
        ]
    return []


def _title(view: str) -> str:
    return view[0].upper() + view[1:]


def _no_cells_sentence(view: str) -> str:
    if view == "matched L0":
        return "No masked SAE could be matched in L0 (each needs its seed's baseline at ≥ 2 values of k)."
    return "No masked run has a paired baseline (same model, hook, shape, tokens and seed)."


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
        f"baseline interpolated to the same L0 ({PRIMARY_INTERPOLATION} between baseline k values, and "
        f"{ALTERNATIVE_INTERPOLATION} through the nearest three as a check; never extrapolated: masked SAEs "
        "outside the baseline's L0 range are listed, not compared). L0 is the core eval's, on its held-out "
        "texts. Same-k rows are a second view.",
        "- **Verdicts.** An effect is claimed only when the paired 95% interval of masked − baseline excludes "
        "zero; q is the Benjamini-Hochberg q-value within the view, and a verdict with q ≥ 0.05 says so. Where "
        "the two interpolations read a matched-L0 comparison differently, its verdict says it depends on the "
        "interpolation. Each metric's label says which direction is better.",
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


def summary_sentences(data: ReportData) -> list[str]:
    """Three plain sentences that open the report: what was compared, what the gates let through, and what the
    comparison shows (the effects that hold after FDR, or why none can be claimed). Every number is the report's."""
    baselines = [r for r in data.records if r.is_baseline]
    masked = [r for r in data.records if not r.is_baseline]
    seeds = data.settings["seeds"]
    conditions = sorted({r.condition for r in masked})
    compared = (
        f"This report compares {plural(len(masked), 'masked SAE')} ({', '.join(conditions) or 'none'}) with "
        f"{plural(len(baselines), 'baseline')} ({', '.join(sorted({r.shape for r in data.records}))}) over "
        f"{plural(len(seeds), 'seed')}."
    )
    below = [r for r in baselines if below_training_gate(r.metrics, data.training_gate)]
    gated = [r for r in data.records if "absorption_letters_passing" in r.metrics]
    absorption = (
        f" Absorption is measurable for {sum(absorption_measurable(r) for r in gated)} of {len(gated)} SAEs."
        if gated
        else ""
    )
    gates = f"{len(baselines) - len(below)} of {len(baselines)} baselines pass the training gate.{absorption}"
    holding: dict[tuple[str, str], list[float]] = {}
    for cell in data.headline_cells("matched L0"):
        for c in data.matched.get(cell, []):
            if c.survives_fdr and not c.depends_on_interpolation and c.metric in KEY_METRICS:
                verdict = c.single_verdict.removeprefix("masked ")
                holding.setdefault((METRICS_BY_KEY[c.metric].label, verdict), []).append(c.difference.mean)
    if len(seeds) < 2:
        shows = "With one seed no difference has an interval, so none below is called an effect."
    elif holding:
        parts = [
            f"{label} {verdict} in {len(means)} cell{'' if len(means) == 1 else 's'} "
            f"({min(means):+.3f} to {max(means):+.3f})"
            if len(means) > 1
            else f"{label} {verdict} in 1 cell ({means[0]:+.3f})"
            for (label, verdict), means in holding.items()
        ]
        shows = f"At matched L0, the masked SAEs' differences that hold after FDR: {'; '.join(parts)}."
    else:
        shows = "At matched L0, no headline difference holds after FDR."
    return [compared, gates, shows]


def _setting_text(key: str) -> Callable[[Any], str]:
    """How a setting's values print: mask tokens as code (a token like `<filename>` is not HTML), others as is."""
    return (lambda value: f"`{value}`") if key == "mask_tokens" else str


def _markdown(data: ReportData, plot_files: list[Path], notices: Sequence[str]) -> str:
    lines = [*(f"> {notice}\n>" for notice in notices)]
    if notices:
        lines[-1] = lines[-1].removesuffix("\n>")
        lines.append("")
    lines += ["# Masked regularization: baseline vs masked SAEs", "", *summary_sentences(data), ""]
    lines += [f"> ⚠ {warning}\n>" for warning in data.gates]
    if data.gates:
        lines.append("")
    if data.study_reference is not None:
        lines += reference_lines(data.reference_rows, data.study_reference)
    lines += _headline_lines(data)
    lines += ["## Setup", ""]
    lines += [
        f"- **{key.replace('_', ' ')}**: {', '.join(map(_setting_text(key), values)) or '—'}"
        for key, values in data.settings.items()
    ]
    lines += [f"- **SAEs**: {len(data.records)} ({sum(r.is_baseline for r in data.records)} baseline)"]
    lines += [f"- **training gate**: {training_gate_note(data.records, data.training_gate)}", ""]
    lines += _how_to_read()
    lines += absorption_gate_lines(absorption_gate_rows(data.records))
    lines += letter_set_lines(data.letter_sets)
    lines += ["## Plots", ""]
    lines += [f"![{path.stem}]({path.name})" for path in plot_files]
    lines += ["", "## Appendix A: matched-L0 comparisons", ""]
    n_matched = count_tests(data.matched)
    lines += [
        f"{n_matched} paired tests, one Benjamini-Hochberg family (about {n_matched / 20:.1f} intervals would "
        f"exclude zero by chance alone); the {ALTERNATIVE_INTERPOLATION} interpolation's tests are a family of "
        "their own. Baseline column: the paired baseline interpolated at the masked SAE's L0.",
        "",
    ]
    if not data.matched:
        lines += [_no_cells_sentence("matched L0"), ""]
    for cell, cell_comparisons in data.matched.items():
        lines += [f"### {cell}", "", *_comparison_rows(cell_comparisons, "baseline at matched L0"), ""]
    if data.unmatched:
        lines += ["Not matched (compared at the same k only):", ""]
        lines += [f"- {u.run} ({u.cell}): {u.reason}" for u in data.unmatched]
        lines.append("")
    lines += [
        "## Appendix B: same-k comparisons",
        "",
        f"{count_tests(data.same_k)} paired tests, one Benjamini-Hochberg family. Masked SAEs and baselines of "
        "the same k and seed; the L0 row shows how far their sparsity differs.",
        "",
    ]
    if not data.same_k:
        lines += [_no_cells_sentence("same k"), ""]
    for cell, cell_comparisons in data.same_k.items():
        lines += [f"### {cell}", "", *_comparison_rows(cell_comparisons, "baseline"), ""]
    lines += ["## Appendix C: every run", "", *_runs_table(data.records), ""]
    ood = _ood_task_lines(data.ood_tasks)
    if ood:
        lines += [ood[0].replace("## OOD tasks", "## Appendix D: OOD tasks"), *ood[1:]]
    return "\n".join(lines).rstrip("\n") + "\n"


def _comparisons_json(comparisons: Comparisons) -> dict[str, list[dict[str, Any]]]:
    return {cell: [c.to_dict() for c in cell_comparisons] for cell, cell_comparisons in comparisons.items()}


def build_report(
    records: list[RunRecord],
    out_dir: str | Path,
    notices: Sequence[str] = (),
    letter_set_rule: LetterSetRule | None = None,
    training_gate: TrainingGate = DEFAULT_TRAINING_GATE,
    study_reference: StudyReference | None = None,
) -> ReportFiles:
    """Write `report.md`, `results.json` and the plots into `out_dir` (each written atomically). `notices`
    (markdown, one line each) open the report, e.g. that it is partial; `results.json` keeps them too.
    `letter_set_rule`: compare absorption on each cell's letter set fixed from its baselines by this rule;
    `training_gate`: when a baseline counts as trained (a cell resting on one that is not leaves the headline);
    `study_reference`: a published study whose intervals each difference is placed against, after the opening."""
    if not records:
        raise ValueError("no SAEs to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = collect_report_data(records, letter_set_rule, training_gate, study_reference)
    records = data.records
    candidates = [
        plots.plot_frontiers(records, out_dir / "metrics_vs_l0.png"),
        plots.plot_ood_accuracy_vs_p(records, out_dir / "ood_accuracy_vs_p.png"),
        plots.plot_differences(data.matched or data.same_k, out_dir / "differences.png", bool(data.matched)),
    ]
    plot_files = [path for path in candidates if path is not None]
    results = {
        "settings": data.settings,
        "gates": data.gates,
        "notices": list(notices),
        "headline": [
            {"cell": row["cell"], "view": row["view"], **row["comparison"].to_dict()} for row in data.headline
        ],
        "ood_tasks": data.ood_tasks,
        "absorption_gate": absorption_gate_rows(records),
        "study_reference": None
        if data.study_reference is None
        else {
            "name": data.study_reference.name,
            "about": data.study_reference.about,
            "rows": [{**asdict(row), "placement": row.placement} for row in data.reference_rows],
        },
        "absorption_letter_sets": {
            label: letter_set.to_dict() for label, letter_set in data.letter_sets.items()
        },
        "training_gate": {
            **asdict(data.training_gate),
            "text": training_gate_note(records, data.training_gate),
        },
        "below_training_gate": data.below_gate,
        "runs": [r.to_dict() for r in records],
        "matched_l0_comparisons": _comparisons_json(data.matched),
        "unmatched": [asdict(u) for u in data.unmatched],
        "same_k_comparisons": _comparisons_json(data.same_k),
        "plots": [path.name for path in plot_files],
    }
    results_path = out_dir / RESULTS_FILE
    write_json_atomic(results_path, results)
    report_path = out_dir / REPORT_FILE
    write_text_atomic(report_path, _markdown(data, plot_files, notices))
    return ReportFiles(report_path, results_path, plot_files)
