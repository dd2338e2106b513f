"""Paired statistics for baseline-vs-masked comparisons: means, 95% intervals and paired t-tests.

Runs are paired when they differ only in masking (same model, hook, architecture, width, k, tokens and seed, so
the same data order). With one pair there is no interval: the verdict says so instead of guessing. A report
holds many tests (metrics × cells), so some 95% intervals exclude zero by chance alone: `false_discovery_control`
adds Benjamini-Hochberg q-values over all of them (one family per view), and a verdict whose q is not below 0.05
says so. A matched-L0 comparison carries the same comparison under an alternative interpolation of the baseline;
where the two read differently, the verdict says it depends on the interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
FALSE_DISCOVERY_RATE = 0.05
PRIMARY_INTERPOLATION = "linear in log L0"
ALTERNATIVE_INTERPOLATION = "quadratic in log L0"
"""How a matched-L0 baseline is interpolated between its k values: the primary way and the alternative whose
disagreement marks a verdict "depends on interpolation" (`matching.interpolate_in_log_l0`)."""


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
    alternative: PairedComparison | None = None
    """The same comparison with the baseline interpolated the alternative way (matched-L0 view only)."""

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
    def effect(self) -> str:
        """The interval's reading without FDR: `higher`, `lower`, `none` (it includes zero) or `no interval`."""
        low, high = self.difference.low, self.difference.high
        if low is None or high is None:
            return "no interval"
        if low <= 0 <= high or math.isclose(low, 0) or math.isclose(high, 0):
            return "none"
        return "higher" if low > 0 else "lower"

    @property
    def survives_fdr(self) -> bool:
        """Whether the interval excludes zero and the q-value is below the false discovery rate."""
        return (
            self.effect in {"higher", "lower"}
            and self.q_value is not None
            and self.q_value < FALSE_DISCOVERY_RATE
        )

    @property
    def single_verdict(self) -> str:
        """The verdict of this comparison alone (ignoring `alternative`)."""
        effect = self.effect
        if effect == "no interval":
            return "one pair: no interval available"
        if effect == "none":
            return "no detectable difference"
        verdict = f"masked {effect}"
        if self.higher_is_better is not None:
            verdict += f" ({'better' if (effect == 'higher') == self.higher_is_better else 'worse'})"
        if self.q_value is not None and self.q_value >= FALSE_DISCOVERY_RATE:
            verdict += "; not significant after FDR correction"
        return verdict

    @property
    def depends_on_interpolation(self) -> bool:
        """Whether the alternative interpolation reads the interval (or its FDR test) differently."""
        return self.alternative is not None and self.alternative.single_verdict != self.single_verdict

    @property
    def verdict(self) -> str:
        """What the data support, never more: an effect only when the 95% interval excludes zero, and only when
        both interpolations of a matched-L0 baseline agree."""
        if self.depends_on_interpolation:
            assert self.alternative is not None
            return (
                f"depends on interpolation ({PRIMARY_INTERPOLATION}: {self.single_verdict}; "
                f"{ALTERNATIVE_INTERPOLATION}: {self.alternative.single_verdict})"
            )
        return self.single_verdict

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data, with its verdict (and the alternative's)."""
        data = {**asdict(replace(self, alternative=None)), "verdict": self.verdict}
        data["alternative"] = None if self.alternative is None else self.alternative.to_dict()
        return data


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


def half_width(summary: Summary) -> float:
    """Half the width of a summary's interval (it must have one)."""
    assert summary.low is not None and summary.high is not None
    return (summary.high - summary.low) / 2


def implied_sd(summary: Summary) -> float:
    """The SD of the paired differences behind a t-interval."""
    return half_width(summary) * math.sqrt(summary.n) / stats.t.ppf(0.5 + CONFIDENCE / 2, summary.n - 1)


def seeds_needed(sd: float, half_width: float) -> int:
    """Smallest n ≥ 2 whose paired t-interval half-width is at most `half_width`, for paired differences of SD
    `sd`."""
    n = 2
    while stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n) > half_width:
        n += 1
    return n
