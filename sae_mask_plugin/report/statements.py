"""Sentences generated from a report's numbers, so that no statement can drift from them: the verdicts of each
view in words (the report's headline), intervals with signs, short cell labels and the markers the report's tables
share. The study pages of the repository (`research/`, not shipped) build their generated blocks from these.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from sae_mask_plugin.report.records import DUPLICATE_METRICS, METRICS_BY_KEY, better_label
from sae_mask_plugin.report.stats import (
    ALTERNATIVE_INTERPOLATION,
    FALSE_DISCOVERY_RATE,
    PRIMARY_INTERPOLATION,
    PairedComparison,
    Summary,
)

Comparisons = Mapping[str, Sequence[PairedComparison]]
MINUS = "−"


def signed(value: float, digits: int = 3) -> str:
    """`value` with its sign and a true minus, e.g. `−0.017`."""
    return f"{value:+.{digits}f}".replace("-", MINUS)


def interval(summary: Summary, digits: int = 3) -> str:
    """`mean [low, high]` (just the mean without an interval)."""
    if summary.low is None or summary.high is None:
        return signed(summary.mean, digits)
    return f"{signed(summary.mean, digits)} [{signed(summary.low, digits)}, {signed(summary.high, digits)}]"


def metric_label(metric: str) -> str:
    return better_label(METRICS_BY_KEY[metric])


def short_cell_labels(cells: Sequence[str]) -> dict[str, str]:
    """Cell names without the words every cell shares, e.g. `p=0.3 token | matryoshka_batchtopk w2048 k32` →
    `p=0.3 k32` when all cells are token-masked Matryoshka SAEs of width 2,048."""
    words = {cell: cell.replace(" | ", " ").split() for cell in cells}
    common = set.intersection(*map(set, words.values())) if len(cells) > 1 else set()
    return {cell: " ".join(word for word in words[cell] if word not in common) or cell for cell in cells}


def shared_words(cells: Sequence[str]) -> str:
    """The words every cell name shares (what `short_cell_labels` leaves out), in their order."""
    if len(cells) < 2:
        return ""
    labels = short_cell_labels(cells)
    dropped = [word for word in cells[0].replace(" | ", " ").split() if word not in labels[cells[0]].split()]
    return " ".join(dropped)


def reading(comparison: PairedComparison) -> str:
    """A short word on a comparison for a compact table: `worse`, `better (not after FDR)`, `depends on
    interpolation`, `—` (no interval) or empty (no detectable difference)."""
    if comparison.depends_on_interpolation:
        return "depends on interpolation"
    effect = comparison.effect
    if effect == "no interval":
        return ""
    if effect == "none":
        return ""
    word = effect
    if comparison.higher_is_better is not None:
        word = "better" if (effect == "higher") == comparison.higher_is_better else "worse"
    return f"**{word}**" if comparison.survives_fdr else f"{word} (not after FDR)"


def _q_text(comparison: PairedComparison) -> str:
    if comparison.q_value is None:
        return ""
    after = "" if comparison.survives_fdr else ", not after FDR"
    return f"q {comparison.q_value:.2g}{after}"


def both_intervals(comparison: PairedComparison, digits: int = 3) -> str:
    """The interval, and the alternative interpolation's when there is one."""
    text = interval(comparison.difference, digits)
    if comparison.alternative is not None:
        text += f" ({ALTERNATIVE_INTERPOLATION.split()[0]}: {interval(comparison.alternative.difference, digits)})"
    return text


def count_tests(comparisons: Comparisons) -> int:
    """The tests of a view's FDR family (each finding once: `DUPLICATE_METRICS` are shown, not counted)."""
    return sum(
        c.p_value is not None and c.metric not in DUPLICATE_METRICS
        for cell in comparisons.values()
        for c in cell
    )


BELOW_GATE_MARK = " (baselines below the training gate)"


def marked_labels(labels: Mapping[str, str], below_gate: Collection[str]) -> dict[str, str]:
    """Cell labels, those of the cells in `below_gate` followed by `BELOW_GATE_MARK`."""
    return {cell: label + (BELOW_GATE_MARK if cell in below_gate else "") for cell, label in labels.items()}


def view_verdicts(
    view: str, comparisons: Comparisons, labels: Mapping[str, str], below_gate: Collection[str] = ()
) -> list[str]:
    """The verdicts of one view in words (markdown bullets): its FDR family, the effects (an interval excluding
    zero) with their q-values, the verdicts that depend on the interpolation, and what is left; the cells in
    `below_gate` carry `BELOW_GATE_MARK`."""
    tested = [(cell, c) for cell, cell_comparisons in comparisons.items() for c in cell_comparisons]
    tested = [(cell, c) for cell, c in tested if c.p_value is not None and c.metric not in DUPLICATE_METRICS]
    if not tested:
        return [f"- **{view}**: no cell has two or more pairs, so there is no interval and no test."]
    labels = marked_labels(labels, below_gate)
    surviving = [f"{metric_label(c.metric)} at {labels[cell]}" for cell, c in tested if holds(c)]
    lines = [
        f"- **{view}**: {plural(len(tested), 'paired test')}, Benjamini-Hochberg within this view: "
        + (
            f"{survive(len(surviving))} FDR (q < {FALSE_DISCOVERY_RATE:g}): {'; '.join(surviving)}."
            if surviving
            else f"none survives FDR (every q ≥ {FALSE_DISCOVERY_RATE:g}, or the effect depends on interpolation)."
        )
    ]
    depends = [(cell, c) for cell, c in tested if c.depends_on_interpolation]
    effects: dict[str, list[str]] = {}
    for cell, c in tested:
        if c.depends_on_interpolation or c.effect not in {"higher", "lower"}:
            continue
        effects.setdefault(c.single_verdict.split(";")[0], []).append(
            f"{metric_label(c.metric)} at {labels[cell]} {both_intervals(c)}, {_q_text(c)}"
        )
    for verdict, items in effects.items():
        lines.append(f"  - {verdict[0].upper()}{verdict[1:]}: {'; '.join(items)}.")
    if depends:
        items = [
            f"{metric_label(c.metric)} at {labels[cell]} ({PRIMARY_INTERPOLATION}: {interval(c.difference)}, "
            f"{c.single_verdict}; {ALTERNATIVE_INTERPOLATION}: {interval(c.alternative.difference)}, "  # type: ignore[union-attr]
            f"{c.alternative.single_verdict})"  # type: ignore[union-attr]
            for cell, c in depends
        ]
        lines.append(f"  - Depends on interpolation: {'; '.join(items)}.")
    n_rest = len(tested) - len(depends) - sum(map(len, effects.values()))
    if n_rest:
        lines.append(
            f"  - No detectable difference (the interval includes zero): the other {plural(n_rest, 'test')}."
        )
    return lines


def holds(comparison: PairedComparison) -> bool:
    """An effect that survives FDR and does not depend on the interpolation."""
    return comparison.survives_fdr and not comparison.depends_on_interpolation


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def survive(n: int) -> str:
    return f"{n} survive{'s' if n == 1 else ''}"


def table_text(text: str) -> str:
    """`text` safe inside a markdown table cell (its pipes escaped)."""
    return text.replace("|", "\\|")
