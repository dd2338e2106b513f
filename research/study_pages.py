"""The study pages' generated blocks, from a report's `results.json`: the study README's tables, the "What we
found" bullets of the study README and of README, and the helpers that rewrite such blocks in markdown files.

Markdown files carry generated blocks between `<!-- begin generated: NAME -->` and `<!-- end generated: NAME -->`;
`python -m research.study_statements` rewrites them from `results.json` (its `runs`, so every number is recomputed
by the package), and a test regenerates them and compares.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from sae_mask_plugin.evals.absorption.gate import NOT_MEASURABLE
from sae_mask_plugin.evals.absorption.letter_set import (
    FIXED_DROPPED,
    FIXED_FRACTION_SCORE,
    FIXED_K1_SCORE,
    FIXED_PASSING,
    LetterSetRule,
)
from sae_mask_plugin.files import write_text_atomic
from sae_mask_plugin.report.build import collect_report_data
from sae_mask_plugin.report.gates import (
    DEFAULT_TRAINING_GATE,
    NOT_COMPUTED,
    TrainingGate,
    absorption_measurable,
    training_gate_note,
)
from sae_mask_plugin.report.matching import cell_name, matched_l0_comparisons
from sae_mask_plugin.report.records import DUPLICATE_METRICS, KEY_METRICS, METRICS_BY_KEY, RunRecord
from sae_mask_plugin.report.statements import (
    Comparisons,
    both_intervals,
    count_tests,
    holds,
    interval,
    marked_labels,
    metric_label,
    plural,
    short_cell_labels,
    signed,
    survive,
    view_verdicts,
)
from sae_mask_plugin.report.stats import (
    ALTERNATIVE_INTERPOLATION,
    FALSE_DISCOVERY_RATE,
    PRIMARY_INTERPOLATION,
    PairedComparison,
    half_width,
    implied_sd,
    seeds_needed,
)

ABSORPTION_HEADLINE = "gated_k1_full_absorption_score"
"""The report's absorption headline (see `report.gates`)."""

DECISION_HALF_WIDTHS = {
    ABSORPTION_HEADLINE: 0.05,
    FIXED_K1_SCORE: 0.05,
    FIXED_FRACTION_SCORE: 0.05,
    FIXED_PASSING: 1.0,
    "mean_absorption_fraction_score": 0.05,
    "mean_full_absorption_score": 0.05,
    "sae_top_1_test_accuracy": 0.02,
    "sae_top_5_test_accuracy": 0.02,
    "sae_ood_accuracy": 0.02,
    "sae_ood_gap": 0.02,
    "explained_variance": 0.02,
}
"""A comparison is decided when its 95% interval's half-width is at most this (under both interpolations)."""

PROBING_AND_RECONSTRUCTION = tuple(metric for metric in KEY_METRICS if "absorption" not in metric)
"""The study's metrics besides absorption (the report's headline metrics), in the order its tables list them."""

STUDY_METRICS = (
    ABSORPTION_HEADLINE,
    "mean_absorption_fraction_score",
    "mean_full_absorption_score",
    *PROBING_AND_RECONSTRUCTION,
)
"""The rows of the study README's table."""

ARM_METRICS = (FIXED_K1_SCORE, FIXED_FRACTION_SCORE, FIXED_PASSING, *PROBING_AND_RECONSTRUCTION)
"""The rows of the absorption arm's table: absorption on the fixed letter set first, then the study's other
metrics (the dropped-word rate, a reference the report does not compare, has a sentence of its own)."""


def records_from_results(results: Mapping[str, Any]) -> list[RunRecord]:
    """The `RunRecord`s a `results.json` was built from (its `runs`)."""
    return [RunRecord(**run) for run in results["runs"]]


def rules_from_results(results: Mapping[str, Any]) -> dict[str, Any]:
    """The rules a `results.json` was built under, as `build_report` / `collect_report_data` keyword arguments:
    its `training_gate` (absent: the absolute default) and its absorption `letter_set_rule` (absent: none)."""
    gate = results.get("training_gate")
    training_gate = (
        TrainingGate(**{f.name: gate[f.name] for f in fields(TrainingGate) if f.name in gate})
        if gate
        else DEFAULT_TRAINING_GATE
    )
    letter_sets = results.get("absorption_letter_sets") or {}
    rule = next(iter(letter_sets.values()))["rule"] if letter_sets else None
    letter_set_rule = LetterSetRule(**{f.name: rule[f.name] for f in fields(LetterSetRule)}) if rule else None
    return {"training_gate": training_gate, "letter_set_rule": letter_set_rule}


def decision(comparison: PairedComparison) -> str:
    """Whether a comparison is decided: an effect (its verdict), a bound on the effect both interpolations
    agree on (half-width ≤ `DECISION_HALF_WIDTHS`), or the seeds a decision would take (an estimate)."""
    readings = [comparison] + ([comparison.alternative] if comparison.alternative is not None else [])
    if comparison.difference.low is None:
        return "one pair: no interval"
    if comparison.depends_on_interpolation:
        return "depends on interpolation"
    if comparison.effect in {"higher", "lower"}:
        return comparison.single_verdict.replace("; not significant after FDR correction", " (not after FDR)")
    threshold = DECISION_HALF_WIDTHS.get(comparison.metric)
    if threshold is None:
        return "no detectable difference"
    if all(half_width(r.difference) <= threshold for r in readings):
        up = max(r.difference.high for r in readings)  # type: ignore[type-var]
        down = max(-r.difference.low for r in readings)  # type: ignore[operator]
        if comparison.higher_is_better is False:  # lower is better: a reduction is the gain
            return f"decided: no reduction beyond {down:.3f} and no increase beyond {up:.3f}"
        return f"decided: no gain beyond {up:.3f} and no loss beyond {down:.3f}"
    needed = max(seeds_needed(implied_sd(r.difference), threshold) for r in readings)
    return f"undecided (~{needed} seeds would decide)"


def pairs_text(cells: Comparisons) -> str:
    """How many paired seeds the cells rest on, with the degrees of freedom, e.g. `3 paired seeds (2 dof)`."""
    counts = sorted({c.difference.n for cell in cells.values() for c in cell})
    return f"{' / '.join(map(str, counts))} paired seeds ({' / '.join(str(n - 1) for n in counts)} dof)"


def fdr_sentence(views: Mapping[str, Comparisons]) -> str:
    """One sentence on the FDR control of every view: its number of tests and the effects that survive it."""
    parts = []
    for view, comparisons in views.items():
        labels = short_cell_labels(list(comparisons))
        surviving = [
            f"{METRICS_BY_KEY[c.metric].label} at {labels[cell]}"
            for cell, cell_comparisons in comparisons.items()
            for c in cell_comparisons
            if holds(c)
        ]
        found = f"{survive(len(surviving))} ({', '.join(surviving)})" if surviving else "none survives"
        parts.append(f"{view}, {plural(count_tests(comparisons), 'test')}: {found}")
    return f"FDR (Benjamini-Hochberg q < {FALSE_DISCOVERY_RATE:g}, within each view): {'; '.join(parts)}."


def comparisons_of(comparisons: Comparisons, condition: str) -> dict[str, Sequence[PairedComparison]]:
    """The cells of one masking condition (e.g. `p=0.3 token`) that have an interval."""
    return {
        cell: cell_comparisons
        for cell, cell_comparisons in comparisons.items()
        if cell.startswith(f"{condition} |") and any(c.difference.n >= 2 for c in cell_comparisons)
    }


def absorption_headline_absence(records: Sequence[RunRecord]) -> str | None:
    """Why no run has the absorption headline (`ABSORPTION_HEADLINE`): None when one has it; "absorption not
    measurable here" when the gate ran and no SAE has enough passing letters; else "not computed" (results
    written before the score existed)."""
    if any(ABSORPTION_HEADLINE in r.metrics for r in records):
        return None
    gated = [r for r in records if "absorption_letters_passing" in r.metrics]
    if gated and not any(absorption_measurable(r) for r in gated):
        return NOT_MEASURABLE
    return NOT_COMPUTED


def study_table(
    comparisons: Comparisons,
    condition: str,
    headline_absence: str | None = None,
    below_gate: Collection[str] = (),
    metrics: Sequence[str] = STUDY_METRICS,
) -> list[str]:
    """The study README's table: one row per metric of `metrics`, one column per cell of `condition` (those in
    `below_gate` marked), each entry the interval (linear, then quadratic where the view interpolates) and its
    decision; the absorption headline's row says `headline_absence` when no run has it
    (`absorption_headline_absence`)."""
    cells = comparisons_of(comparisons, condition)
    if not cells:
        return [f"No cell of {condition} has two or more pairs."]
    labels = marked_labels(short_cell_labels(list(cells)), below_gate)
    lines = [f"| metric | {' | '.join(labels[cell] for cell in cells)} |", f"|---|{'---|' * len(cells)}"]
    for metric in metrics:
        if metric == ABSORPTION_HEADLINE and headline_absence is not None:
            lines.append(f"| {metric_label(metric)} | {' | '.join(headline_absence for _ in cells)} |")
            continue
        entries = []
        for cell_comparisons in cells.values():
            found = [c for c in cell_comparisons if c.metric == metric]
            entries.append(f"{both_intervals(found[0])}: {decision(found[0])}" if found else "—")
        if any(entry != "—" for entry in entries):
            lines.append(f"| {metric_label(metric)} | {' | '.join(entries)} |")
    return lines


P_CURVE_METRICS = (
    ABSORPTION_HEADLINE,
    "mean_absorption_fraction_score",
    "sae_top_1_test_accuracy",
    "sae_top_5_test_accuracy",
    "sae_ood_gap",
    "explained_variance",
    "frac_alive",
)


def p_curve_table(records: list[RunRecord]) -> list[str]:
    """masked − baseline at matched L0 against p, seed-matched: each p over the seeds that every masked p has
    (mean [95 % interval]; one seed: its single pair), beside the mean over all its paired seeds where a p has
    more; an entry with fewer pairs than its row's seeds (a masked L0 outside its baseline's range is not
    extrapolated) says how many; a column per `P_CURVE_METRICS` metric that has a value (ungated absorption only
    where the gate finds it measurable)."""
    records = [r for r in records if r.loss_positions == "all"]
    baseline_seeds = {r.seed for r in records if r.is_baseline}
    masked = [r for r in records if not r.is_baseline and r.seed in baseline_seeds]  # those with a pair
    ps = sorted({r.mask_p for r in masked})
    seeds_by_p = {p: {r.seed for r in masked if r.mask_p == p} for p in ps}
    shared = sorted(set.intersection(*seeds_by_p.values()), key=str) if ps else []
    if len(ps) < 2 or not shared:
        return []
    seed_matched, _ = matched_l0_comparisons([r for r in records if r.seed in shared])
    seeds = f"seed {shared[0]}" if len(shared) == 1 else f"seeds {', '.join(map(str, shared))}"
    # (label, comparisons, the number of pairs each entry should have)
    rows: list[tuple[str, Comparisons, int]] = [
        (f"{p:g} ({seeds})", _cells_at_p(seed_matched, p), len(shared)) for p in ps
    ]
    all_comparisons, _ = matched_l0_comparisons(records)
    rows += [
        (
            f"{p:g} (mean of {len(seeds_by_p[p])} paired seeds)",
            _cells_at_p(all_comparisons, p),
            len(seeds_by_p[p]),
        )
        for p in ps
        if len(seeds_by_p[p]) > len(shared)
    ]
    ks = [
        k
        for k in sorted({r.k for r in masked if r.k}, key=int)
        if any(_comparison(cells, k, metric) for _, cells, _ in rows for metric in P_CURVE_METRICS)
    ]
    metrics = [
        metric
        for metric in P_CURVE_METRICS
        if any(_comparison(cells, k, metric) for _, cells, _ in rows for k in ks)
    ]
    header = [f"{metric_label(metric)}, k {' / '.join(map(str, ks))}" for metric in metrics]
    lines = [f"| p | {' | '.join(header)} |", f"|---|{'---|' * len(header)}"]
    for label, cells, n_pairs in rows:
        entries = []
        for metric in metrics:
            by_k = {k: _comparison(cells, k, metric) for k in ks}
            entries.append(" / ".join(_p_curve_entry(c, n_pairs) for c in by_k.values()))
        lines.append(f"| {label} | {' | '.join(entries)} |")
    return lines


def _p_curve_entry(comparison: PairedComparison | None, n_pairs: int) -> str:
    """A p-curve entry: the interval, with its number of pairs where that is fewer than `n_pairs`."""
    if comparison is None:
        return "—"
    n = comparison.difference.n
    return interval(comparison.difference) + (f" ({plural(n, 'pair')})" if n < n_pairs else "")


def _cells_at_p(comparisons: Comparisons, p: float) -> Comparisons:
    return {cell: c for cell, c in comparisons.items() if cell.startswith(f"p={p:g} ")}


def _comparison(cells: Comparisons, k: int, metric: str) -> PairedComparison | None:
    for cell, cell_comparisons in cells.items():
        if cell.endswith(f" k{k}"):
            for c in cell_comparisons:
                if c.metric == metric:
                    return c
    return None


def baseline_ranges(records: list[RunRecord]) -> str:
    """The baselines' explained variance and alive fraction ranges, e.g. `EV 0.75–0.87, alive 0.64–0.89`."""
    baselines = [r for r in records if r.is_baseline]
    parts = []
    for key, name in (("explained_variance", "EV"), ("frac_alive", "alive")):
        values = [r.metrics[key] for r in baselines if key in r.metrics]
        if values:
            low, high = f"{min(values):.2f}", f"{max(values):.2f}"
            parts.append(f"{name} {low}" if low == high else f"{name} {low}–{high}")
    return ", ".join(parts)


def generated_blocks(results: Mapping[str, Any], condition: str = "p=0.3 token") -> dict[str, str]:
    """Every generated block of the study's docs, from a report's `results.json`: `study-tables` (the study
    README's tables), `what-we-found` (the bullets with the FDR sentence) and `what-we-found-brief` (the bullets,
    for README)."""
    records = records_from_results(results)
    data = collect_report_data(records, **rules_from_results(results))
    matched_labels = short_cell_labels(list(data.matched))
    same_k_labels = short_cell_labels(list(data.same_k))
    verdicts = [
        *view_verdicts("Matched L0", data.matched, matched_labels, data.below_gate["matched L0"]),
        *view_verdicts("Same k", data.same_k, same_k_labels, data.below_gate["same k"]),
    ]
    below_gate = data.below_gate["matched L0"]
    cells = comparisons_of(data.matched, condition)
    headline_absence = absorption_headline_absence(records)
    p_curve = p_curve_table(records)
    tables = [
        f"masked ({condition}) − baseline at matched L0, {pairs_text(cells)}; 95 % paired t-intervals with the "
        f"baseline interpolated {PRIMARY_INTERPOLATION} (the {ALTERNATIVE_INTERPOLATION.split()[0]} "
        "interpolation's in brackets). Decided: the interval's half-width is ≤ 0.05 (absorption) or ≤ 0.02 "
        "(accuracy, EV) under both; else the seeds a decision would take, from the measured seed variance (an "
        "estimate).",
        "",
        *study_table(data.matched, condition, headline_absence, below_gate),
        "",
        "Verdicts per view (the report's headline; "
        + ", ".join(
            f"{METRICS_BY_KEY[duplicate].label} restates {METRICS_BY_KEY[primary].label}"
            for duplicate, primary in DUPLICATE_METRICS.items()
        )
        + ": neither is counted):",
        "",
        *verdicts,
    ]
    for variant in _variants_of(data.matched, condition):
        variant_cells = comparisons_of(data.matched, variant)
        intro = (
            f"masked ({variant}) − baseline at matched L0, {pairs_text(variant_cells)}, the same way (beside the "
            f"{condition} table above: what changes when the masked positions do not enter the SAE's loss):"
        )
        tables += [
            "",
            *([intro, ""] if variant_cells else []),
            *study_table(data.matched, variant, headline_absence, below_gate),
        ]
    if p_curve:
        tables += [
            "",
            "The p curve, masked − baseline at matched L0, seed-matched: mean [95 % interval] (single pairs have no "
            "interval; an entry with fewer pairs than its row's seeds says how many: a masked SAE whose L0 lies "
            "outside its baseline's range is not extrapolated, and the report lists it):",
            "",
            *p_curve,
        ]
    labels = marked_labels(short_cell_labels(list(cells)), below_gate)
    found = [
        f"masked ({condition}) − baseline at matched L0, {pairs_text(cells)}, "
        f"{' / '.join(labels.values())}; 95 % paired intervals, baseline interpolated {PRIMARY_INTERPOLATION} "
        f"({ALTERNATIVE_INTERPOLATION.split()[0]} in brackets):",
        "",
    ]
    found += metric_bullets(cells, STUDY_METRICS, headline_absence)
    baselines = baselines_sentence(records, data.gates)
    fdr = fdr_sentence({"matched L0": data.matched, "same k": data.same_k})
    return {
        "study-tables": "\n".join(tables),
        "what-we-found": "\n".join([*found, "", fdr, baselines]),
        "what-we-found-brief": "\n".join([*found, "", baselines]),
    }


def metric_bullets(
    cells: Comparisons, metrics: Sequence[str], headline_absence: str | None = None
) -> list[str]:
    """One markdown bullet per metric of `metrics` that a cell compares: each cell's interval (the alternative
    interpolation's in brackets where the view interpolates) and its decision, cells joined by ` / `; the
    absorption headline's bullet says `headline_absence` when no run has it."""
    bullets = []
    for metric in metrics:
        entries = [
            f"{interval(c.difference)}{'' if c.alternative is None else f' ({_bracketed(c)})'} {decision(c)}"
            for cell_comparisons in cells.values()
            for c in cell_comparisons
            if c.metric == metric
        ]
        if metric == ABSORPTION_HEADLINE and headline_absence is not None:
            bullets.append(f"- **{metric_label(metric)}**: {headline_absence}")
        elif entries:
            bullets.append(f"- **{metric_label(metric)}**: {' / '.join(entries)}")
    return bullets


def baselines_sentence(records: list[RunRecord], gates: Sequence[str]) -> str:
    """The baselines' EV and alive ranges and the report's gate warnings, in one sentence."""
    n_warnings = len(gates)
    return f"Baselines: {baseline_ranges(records)}; " + (
        f"{n_warnings} gate warning{'s' if n_warnings > 1 else ''} in the report ({'; '.join(_gate_names(gates))})."
        if gates
        else "no gate warning in the report."
    )


def arm_blocks(results: Mapping[str, Any], condition: str = "p=0.3 token") -> dict[str, str]:
    """The absorption arm's generated blocks, from its report's `results.json`: `arm-tables` (the arm page's
    table, letter sets and verdicts) and `arm-what-we-found` (the bullets, for the study page and README). The arm
    compares at the same k (for TopK the same L0), where the fixed letter set's scores live."""
    records = records_from_results(results)
    data = collect_report_data(records, **rules_from_results(results))
    if not data.letter_sets:
        raise ValueError("the results carry no absorption letter set: not an absorption arm's report")
    below_gate = data.below_gate["same k"]
    cells = comparisons_of(data.same_k, condition)
    short_labels = short_cell_labels(list(data.same_k))
    labels = marked_labels(short_cell_labels(list(cells)), below_gate)
    heading = (
        f"masked ({condition}) − baseline at the same k (TopK: the same L0), {pairs_text(cells)}, "
        f"{' / '.join(labels.values())}"
    )
    intro = (
        f"{heading}; 95 % paired t-intervals. Decided: the interval's half-width is ≤ "
        f"{DECISION_HALF_WIDTHS[FIXED_K1_SCORE]:g} (absorption), ≤ {DECISION_HALF_WIDTHS[FIXED_PASSING]:g} letter "
        "(letters passing) or ≤ 0.02 (accuracy, EV); else the seeds a decision would take, from the measured seed "
        "variance (an estimate)."
    )
    letters = "; ".join(
        f"{label}: {''.join(s.letters)} ({plural(len(s.letters), 'letter')}; in every baseline: "
        f"{''.join(s.every_seed_letters) or 'none'})"
        for label, s in data.letter_sets.items()
    )
    rule = next(iter(data.letter_sets.values())).rule.describe()
    letter_sentence = f"Letter sets, fixed from the baselines alone ({rule}): {letters}."
    gate_sentence = f"Training gate: {training_gate_note(records, data.training_gate)}" + (
        f"; below it: {', '.join(short_labels[cell] for cell in below_gate)}."
        if below_gate
        else "; every cell passes."
    )
    confound = gate_confound(records, data.training_gate, below_gate, short_labels)
    dropped = dropped_sentence(records)
    tables = [
        *confound,
        intro,
        "",
        *study_table(data.same_k, condition, below_gate=below_gate, metrics=ARM_METRICS),
        "",
        letter_sentence,
        "",
        "Verdicts (the report's headline; the dropped-word rate is shown, not tested):",
        "",
        *view_verdicts("Same k", data.same_k, short_labels, below_gate),
        "",
        dropped,
    ]
    found = [
        *confound,
        f"{heading}:",
        "",
        *metric_bullets(cells, ARM_METRICS),
        "",
        letter_sentence,
        dropped,
        gate_sentence,
        baselines_sentence(records, data.gates),
    ]
    return {"arm-tables": "\n".join(tables), "arm-what-we-found": "\n".join(found)}


def gate_confound(
    records: Sequence[RunRecord], gate: TrainingGate, below_gate: Collection[str], labels: Mapping[str, str]
) -> list[str]:
    """A warning paragraph (and a blank line) when cells' baselines are below the training gate: per cell, the
    baselines' EV and alive ranges against what the gate asks; empty when every cell passes."""
    if not below_gate:
        return []
    shape_of_cell = {cell_name(r): r.shape for r in records if not r.is_baseline}
    parts = []
    for cell in below_gate:
        shape = shape_of_cell[cell]
        baselines = [r for r in records if r.is_baseline and r.shape == shape]
        ev = [r.metrics["explained_variance"] for r in baselines if "explained_variance" in r.metrics]
        alive = [r.metrics["frac_alive"] for r in baselines if "frac_alive" in r.metrics]
        parts.append(
            f"{labels[cell]}: core EV {min(ev):.3f}–{max(ev):.3f} against ≥ {gate.ev_threshold(shape):.3f}, "
            f"alive {min(alive):.2f}–{max(alive):.2f} against ≥ {gate.alive_threshold(shape):.3g}"
        )
    return [
        f"**Below the training gate: {', '.join(labels[cell] for cell in below_gate)}.** The gate was written into "
        f"the recipe before any run; these cells' baselines fall short of it ({'; '.join(parts)}), so by that rule "
        "they carry no headline verdict: the intervals below compare SAEs that did not reach the plateau the gate "
        "asks for.",
        "",
    ]


def dropped_sentence(records: Sequence[RunRecord]) -> str:
    """The fixed set's dropped-word rate (probe-positive words where nothing aligned with the letter fires: dropped,
    not absorbed) by arm and k, mean over seeds: shown beside the scores, not compared (not validated on ground
    truth)."""
    by_arm: dict[tuple[str, int | None], list[float]] = {}
    for record in records:
        if FIXED_DROPPED in record.metrics:
            arm = "baseline" if record.is_baseline else f"p={record.mask_p:g}"
            by_arm.setdefault((arm, record.k), []).append(record.metrics[FIXED_DROPPED])
    if not by_arm:
        return "No SAE has a dropped-word rate on its fixed letter set."
    means = "; ".join(
        f"{arm} k{k} {sum(values) / len(values):.3f}" for (arm, k), values in sorted(by_arm.items(), key=str)
    )
    return (
        "Dropped-word rate on the fixed set (nothing aligned with the letter fires; a reference, not compared, "
        f"not validated on ground truth), mean over seeds: {means}."
    )


def _variants_of(comparisons: Comparisons, condition: str) -> list[str]:
    """The conditions that are `condition` with other loss positions, e.g. `p=0.3 token unmasked-loss`."""
    conditions = {cell.split(" | ")[0] for cell in comparisons}
    return sorted(c for c in conditions if c.startswith(f"{condition} ") and c.endswith("-loss"))


def _bracketed(comparison: PairedComparison) -> str:
    alternative = comparison.alternative
    if alternative is None or alternative.difference.low is None or alternative.difference.high is None:
        return "—"
    return f"[{signed(alternative.difference.low)}, {signed(alternative.difference.high)}]"


def _gate_names(gates: Sequence[str]) -> list[str]:
    return [match.group(1).rstrip(".") if (match := re.match(r"\*\*(.+?)\*\*", g)) else g for g in gates]


BLOCK = re.compile(r"(<!-- begin generated: ([\w-]+) -->\n)(.*?)(<!-- end generated: \2 -->)", re.DOTALL)


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in a markdown text."""
    return [match.group(2) for match in BLOCK.finditer(text)]


def fill_blocks(text: str, blocks: Mapping[str, str], keep_others: bool = False) -> str:
    """`text` with each generated block's content replaced by `blocks[name]`. A block without an entry in `blocks`
    is an error, or with `keep_others` (a file whose blocks come from several generators) left as it is."""
    unknown = [name for name in block_names(text) if name not in blocks]
    if unknown and not keep_others:
        raise ValueError(f"no generator for the blocks {', '.join(unknown)} (known: {', '.join(blocks)})")
    return BLOCK.sub(
        lambda m: f"{m.group(1)}{blocks[m.group(2)]}\n{m.group(4)}" if m.group(2) in blocks else m.group(0),
        text,
    )


def update_block(path: Path, name: str, content: str) -> None:
    """Rewrite the generated block `name` of the markdown file at `path` with `content` (atomically), leaving the
    blocks other generators fill."""
    write_text_atomic(path, fill_blocks(path.read_text(), {name: content}, keep_others=True))
