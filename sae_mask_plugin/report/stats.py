"""Paired statistics for baseline-vs-masked comparisons: means, 95% intervals and paired t-tests.

Runs are paired when they differ only in masking (same model, hook, architecture, width, k, tokens and seed, so
the same data order). With one pair there is no interval: the verdict says so instead of guessing. A report
holds many tests (metrics × cells), so some 95% intervals exclude zero by chance alone: `false_discovery_control`
adds Benjamini-Hochberg q-values over all of them, and a verdict whose q is not below 0.05 says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
FALSE_DISCOVERY_RATE = 0.05


@dataclass(frozen=True)
class Summary:
    """Mean of `n` values with a two-sided 95% t-interval (`low`/`high` are None when n < 2)."""

    mean: float
    n: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        array = np.asarray(values, dtype=float)
        mean = float(array.mean())
        if len(array) < 2:
            return cls(mean, len(array), None, None)
        half_width = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(array) - 1) * stats.sem(array))
        return cls(mean, len(array), mean - half_width, mean + half_width)

    def format(self, digits: int = 3) -> str:
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class PairedComparison:
    """masked − baseline over paired runs: the mean difference, its interval and a paired t-test."""

    metric: str
    baseline: Summary
    masked: Summary
    difference: Summary
    p_value: float | None
    higher_is_better: bool | None
    q_value: float | None = None

    @classmethod
    def of(
        cls, metric: str, baseline: list[float], masked: list[float], higher_is_better: bool | None
    ) -> PairedComparison:
        if len(baseline) != len(masked) or not baseline:
            raise ValueError(f"{metric}: paired comparison needs equal, non-empty lists")
        differences = [m - b for b, m in zip(baseline, masked, strict=True)]
        p_value = None
        if len(differences) >= 2:
            if np.allclose(differences, differences[0]):
                p_value = 0.0 if differences[0] != 0 else 1.0
            else:
                p_value = float(stats.ttest_rel(masked, baseline).pvalue)
        return cls(
            metric,
            Summary.of(baseline),
            Summary.of(masked),
            Summary.of(differences),
            p_value,
            higher_is_better,
        )

    @property
    def verdict(self) -> str:
        """What the data support, never more: an effect only when the 95% interval excludes zero."""
        low, high = self.difference.low, self.difference.high
        if low is None or high is None:
            return "one pair: no interval available"
        if low <= 0 <= high or math.isclose(low, 0) or math.isclose(high, 0):
            return "no detectable difference"
        direction = "higher" if low > 0 else "lower"
        verdict = f"masked {direction}"
        if self.higher_is_better is not None:
            better = (low > 0) == self.higher_is_better
            verdict += f" ({'better' if better else 'worse'})"
        if self.q_value is not None and self.q_value >= FALSE_DISCOVERY_RATE:
            verdict += "; not significant after FDR correction"
        return verdict


def false_discovery_control(comparisons: Sequence[PairedComparison]) -> list[PairedComparison]:
    """The comparisons with Benjamini-Hochberg q-values (scipy's `false_discovery_control`) over all that have
    a p-value; the others are returned unchanged."""
    tested = [index for index, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = list(comparisons)
    if tested:
        q_values = stats.false_discovery_control([comparisons[index].p_value for index in tested])
        for index, q_value in zip(tested, q_values, strict=True):
            adjusted[index] = replace(comparisons[index], q_value=float(q_value))
    return adjusted
