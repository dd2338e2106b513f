"""Paired comparisons, at the same k and at matched L0.

Same k: a masked run pairs with the baseline of its pairing key (same model, hook, architecture, width, k, tokens
and seed). Matched L0: the baseline runs of the masked run's seed (same key but any k) form an L0 curve; each of
their metrics is interpolated linearly in log L0 at the masked run's L0 (the core eval's L0 on its held-out
texts), and masked − interpolated is the paired difference. The same comparison is also made with a quadratic
in log L0 through the nearest three baseline points: a verdict the two read differently depends on the shape
assumed between the k values, and says so. Nothing is extrapolated: a masked run whose L0 lies
outside its baseline curve's L0 range (or whose seed has fewer than two baseline L0 values) is listed as
unmatched, with the reason. Each view is one family for the Benjamini-Hochberg q-values. SAEBench's ungated
absorption scores are compared only between SAEs whose absorption the signal gate finds measurable
(`report.gates.comparable_metrics`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from sae_mask_plugin.report.gates import ALIVE_GATE_MARGIN, EV_GATE_MARGIN, comparable_metrics
from sae_mask_plugin.report.records import (
    DUPLICATE_METRICS,
    METRICS,
    REFERENCE_METRICS,
    SAME_K_ONLY_METRICS,
    RunRecord,
)
from sae_mask_plugin.report.stats import PairedComparison, false_discovery_control

L0_METRIC = "l0"
Interpolation = Literal["linear", "quadratic"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)

PairedMetrics = tuple[dict[str, float], dict[str, float]]
"""(baseline metrics, masked metrics) of one pair; the baseline's may be interpolated."""


@dataclass(frozen=True)
class Unmatched:
    """A masked run with no matched-L0 baseline, and why."""

    run: str
    cell: str
    reason: str


def cell_name(masked: RunRecord) -> str:
    """A comparison cell: the masking condition and the SAE shape, e.g. `p=0.3 token | batchtopk w2048 k32`."""
    return f"{masked.condition} | {masked.shape}"


def interpolate_in_log_l0(
    points: Sequence[tuple[float, float]], l0: float, interpolation: Interpolation = "linear"
) -> float | None:
    """The value at `l0` of the curve through `points` [(L0, value), ...] in log L0; None when `l0` is outside the
    points' L0 range or fewer than two distinct L0 values exist (never extrapolates).

    `linear`: piecewise linear. `quadratic`: the parabola through the three points nearest `l0` in log L0 (with
    two points, the line through them)."""
    curve = sorted(points)
    log_l0s = [math.log(point_l0) for point_l0, _ in curve]
    if len(set(log_l0s)) < 2 or not curve[0][0] <= l0 <= curve[-1][0]:
        return None
    values = [value for _, value in curve]
    if interpolation == "linear" or len(set(log_l0s)) == 2:
        return float(np.interp(math.log(l0), log_l0s, values))
    if interpolation != "quadratic":
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {interpolation!r}")
    distinct = sorted({log_l0: value for log_l0, value in zip(log_l0s, values, strict=True)}.items())
    nearest = sorted(sorted(distinct, key=lambda point: abs(point[0] - math.log(l0)))[:3])
    coefficients = np.polyfit([x for x, _ in nearest], [y for _, y in nearest], 2)
    return float(np.polyval(coefficients, math.log(l0)))


def same_k_pairs(records: list[RunRecord]) -> dict[str, list[PairedMetrics]]:
    """Cell → (baseline, masked) metrics of masked runs and the baseline of the same pairing key."""
    baselines = {r.pairing_key: r for r in records if r.is_baseline}
    pairs: dict[str, list[PairedMetrics]] = defaultdict(list)
    for masked in _masked_runs(records):
        baseline = baselines.get(masked.pairing_key)
        if baseline is not None:
            pairs[cell_name(masked)].append((comparable_metrics(baseline), comparable_metrics(masked)))
    return dict(pairs)


def matched_l0_pairs(
    records: list[RunRecord], interpolation: Interpolation = "linear"
) -> tuple[dict[str, list[PairedMetrics]], list[Unmatched]]:
    """Cell → (baseline interpolated at the masked L0, masked) metrics, and the masked runs left unmatched."""
    curves = _baseline_curves(records)
    pairs: dict[str, list[PairedMetrics]] = defaultdict(list)
    unmatched: list[Unmatched] = []
    for masked in _masked_runs(records):
        cell = cell_name(masked)
        curve = curves.get(masked.curve_key, [])
        l0 = masked.metrics.get(L0_METRIC)
        l0s = sorted(r.metrics[L0_METRIC] for r in curve)
        if l0 is None:
            unmatched.append(Unmatched(masked.name, cell, "no L0 (run the core eval)"))
        elif len(set(l0s)) < 2:
            unmatched.append(Unmatched(masked.name, cell, "its seed's baseline has fewer than two L0 values"))
        elif not l0s[0] <= l0 <= l0s[-1]:
            unmatched.append(
                Unmatched(
                    masked.name,
                    cell,
                    f"L0 {l0:.2f} outside its baseline's L0 range [{l0s[0]:.2f}, {l0s[-1]:.2f}] (not extrapolated)",
                )
            )
        else:
            interpolated = {}
            tested = comparable_metrics(masked)
            for key in tested.keys() - REFERENCE_METRICS - SAME_K_ONLY_METRICS:
                value = interpolate_in_log_l0(
                    [(r.metrics[L0_METRIC], r.metrics[key]) for r in curve if key in comparable_metrics(r)],
                    l0,
                    interpolation,
                )
                if value is not None:
                    interpolated[key] = value
            pairs[cell].append((interpolated, masked.metrics))
    return dict(pairs), unmatched


def _baseline_curves(records: list[RunRecord]) -> dict[tuple, list[RunRecord]]:
    """The baselines with an L0, by `curve_key`."""
    curves: dict[tuple, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.is_baseline and L0_METRIC in record.metrics:
            curves[record.curve_key].append(record)
    return curves


GATED_METRICS = ("explained_variance", "frac_alive", EV_GATE_MARGIN, ALIVE_GATE_MARGIN)
"""The baseline metrics the training gate reads (`report.gates.below_training_gate`)."""


def baselines_as_compared(records: list[RunRecord]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """View (`matched L0`, `same k`) → cell → masked run → its baseline's `GATED_METRICS` as the comparison
    reads them: at the same k the baseline of the same pairing key; at matched L0 the baselines interpolated
    (linear in log L0) at the masked run's L0, so a cell's gate is that of the baseline it is compared with."""
    compared: dict[str, dict[str, dict[str, dict[str, float]]]] = {
        "matched L0": defaultdict(dict),
        "same k": defaultdict(dict),
    }
    baselines = {r.pairing_key: r for r in records if r.is_baseline}
    curves = _baseline_curves(records)
    for masked in _masked_runs(records):
        cell = cell_name(masked)
        if (baseline := baselines.get(masked.pairing_key)) is not None:
            compared["same k"][cell][masked.name] = {
                key: baseline.metrics[key] for key in GATED_METRICS if key in baseline.metrics
            }
        l0 = masked.metrics.get(L0_METRIC)
        curve = curves.get(masked.curve_key, [])
        if l0 is None:
            continue
        interpolated = {
            key: value
            for key in GATED_METRICS
            if (
                value := interpolate_in_log_l0(
                    [(r.metrics[L0_METRIC], r.metrics[key]) for r in curve if key in r.metrics], l0
                )
            )
            is not None
        }
        if interpolated:
            compared["matched L0"][cell][masked.name] = interpolated
    return {view: dict(cells) for view, cells in compared.items()}


def compare_pairs(
    pairs: dict[str, list[PairedMetrics]], include_reference: bool
) -> dict[str, list[PairedComparison]]:
    """One `PairedComparison` per cell and metric (in `METRICS` order), with q-values over all of them but the
    `DUPLICATE_METRICS` (each finding counted once; those keep no q-value).

    `include_reference` keeps L0 and the other reference metrics (same-k view: they show what differs besides
    masking); the matched-L0 view leaves them out (L0 is equal there by construction)."""
    comparisons: dict[str, list[PairedComparison]] = {}
    for cell, cell_pairs in pairs.items():
        comparisons[cell] = []
        for spec in METRICS:
            if spec.key in REFERENCE_METRICS and not (include_reference and spec.key == L0_METRIC):
                continue
            both = [(b, m) for b, m in cell_pairs if spec.key in b and spec.key in m]
            if both:
                comparisons[cell].append(
                    PairedComparison.of(
                        spec.key,
                        [b[spec.key] for b, _ in both],
                        [m[spec.key] for _, m in both],
                        spec.higher_is_better,
                    )
                )
    family = [c for cell in comparisons.values() for c in cell if c.metric not in DUPLICATE_METRICS]
    adjusted = iter(false_discovery_control(family))
    return {
        cell: [c if c.metric in DUPLICATE_METRICS else next(adjusted) for c in cell_comparisons]
        for cell, cell_comparisons in comparisons.items()
    }


def matched_l0_comparisons(
    records: list[RunRecord],
) -> tuple[dict[str, list[PairedComparison]], list[Unmatched]]:
    """The matched-L0 view: comparisons with the baseline interpolated linearly in log L0, each carrying the same
    comparison under the quadratic interpolation (`alternative`; its q-values form their own family), and the
    masked runs left unmatched."""
    linear_pairs, unmatched = matched_l0_pairs(records, "linear")
    quadratic = compare_pairs(matched_l0_pairs(records, "quadratic")[0], include_reference=False)
    comparisons = {}
    for cell, cell_comparisons in compare_pairs(linear_pairs, include_reference=False).items():
        alternatives = {c.metric: c for c in quadratic.get(cell, [])}
        comparisons[cell] = [replace(c, alternative=alternatives.get(c.metric)) for c in cell_comparisons]
    return comparisons, unmatched


def _masked_runs(records: list[RunRecord]) -> list[RunRecord]:
    return sorted(
        (r for r in records if not r.is_baseline),
        key=lambda r: (r.mask_p, r.condition, r.architecture, r.d_sae, r.k or 0, r.name),
    )
