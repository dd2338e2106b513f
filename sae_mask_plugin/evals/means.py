"""Means over scores that may be missing (None), with the two readings of "missing" the evals need.

- `mean_of_present`: an item without the score simply does not count (a metric some datasets lack, such as the
  AUC of a one-class test set; no tasks with signal at all gives None).
- `mean_if_complete`: the items are a set fixed in advance (the letters passing the absorption gate, a fixed
  letter set), so one missing score leaves the set's mean undefined: the mean of the others would be the mean
  of another set.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def mean_of_present(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not None; None when none is."""
    present = [value for value in values if value is not None]
    return statistics.mean(present) if present else None


def mean_if_complete(values: Iterable[float | None]) -> float | None:
    """The mean of the values; None when there are none or any of them is None."""
    listed = list(values)
    if not listed or any(value is None for value in listed):
        return None
    return statistics.mean(listed)  # type: ignore[arg-type]
