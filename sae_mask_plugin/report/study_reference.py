"""A published study's intervals beside a small run's differences, so that one seed can be read against several.

A reference (`study_references/<name>.json`, shipped with the package) holds, per comparison view, cell and metric,
the published study's paired masked - baseline difference: its mean, 95 % t-interval and number of seeds. It is
generated from the study's `results.json` (`python -m sae_mask_plugin.report.study_reference NAME RESULTS_JSON`;
a test keeps the shipped file equal to what the published results give). A report built with a reference places each of its own differences beside the
study's interval for the same cell and metric: inside, above or below it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sae_mask_plugin.errors import SaeMaskUserError
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.report.records import METRICS_BY_KEY
from sae_mask_plugin.report.statements import table_text
from sae_mask_plugin.report.stats import PairedComparison

STUDY_REFERENCES_DIR = Path(__file__).with_name("study_references")
VIEWS = ("matched L0", "same k")
RESULTS_KEYS = {"matched L0": "matched_l0_comparisons", "same k": "same_k_comparisons"}


@dataclass(frozen=True)
class StudyInterval:
    """The study's masked - baseline difference of one metric in one cell: mean and 95 % t-interval over seeds."""

    mean: float
    low: float
    high: float
    n: int

    def place(self, value: float) -> str:
        """`inside` the interval, or `outside (above)` / `outside (below)` it."""
        return "outside (above)" if value > self.high else "outside (below)" if value < self.low else "inside"


@dataclass(frozen=True)
class StudyReference:
    """A published study's intervals: `intervals[view][cell][metric]`; `about` says what the study trained."""

    name: str
    about: str
    intervals: dict[str, dict[str, dict[str, StudyInterval]]]

    def interval(self, view: str, cell: str, metric: str) -> StudyInterval | None:
        return self.intervals.get(view, {}).get(cell, {}).get(metric)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceRow:
    """One of a report's differences beside the study's interval for its cell and metric."""

    view: str
    cell: str
    metric: str
    difference: float
    study: StudyInterval

    @property
    def placement(self) -> str:
        return self.study.place(self.difference)


class StudyReferenceError(SaeMaskUserError, ValueError):
    """A reference name with no shipped file."""


def available_study_references() -> list[str]:
    """The names of the shipped references."""
    return sorted(path.stem for path in STUDY_REFERENCES_DIR.glob("*.json"))


def study_reference_from_results(name: str, results: Mapping[str, Any]) -> StudyReference:
    """The reference of a study's `results.json` (`report.build`'s format): every comparison with an interval,
    and what the study trained (from its settings)."""
    settings = results["settings"]
    about = (
        f"{', '.join(settings['architectures'])} w{', '.join(map(str, settings['widths']))} at "
        f"{', '.join(settings['hooks'])}, {', '.join(f'{t:,}' for t in settings['training_tokens'])} training "
        f"tokens per SAE, {len(settings['seeds'])} seeds"
    )
    intervals: dict[str, dict[str, dict[str, StudyInterval]]] = {}
    for view, key in RESULTS_KEYS.items():
        for cell, comparisons in results.get(key, {}).items():
            for comparison in comparisons:
                difference = comparison["difference"]
                if difference["low"] is None:
                    continue
                intervals.setdefault(view, {}).setdefault(cell, {})[comparison["metric"]] = StudyInterval(
                    difference["mean"], difference["low"], difference["high"], difference["n"]
                )
    return StudyReference(name, about, intervals)


def load_study_reference(name: str) -> StudyReference:
    """The shipped reference `name` (`StudyReferenceError` when there is none)."""
    path = STUDY_REFERENCES_DIR / f"{name}.json"
    if not path.is_file():
        raise StudyReferenceError(
            f"no study reference named {name!r}; shipped: {', '.join(available_study_references()) or 'none'}"
        )
    data = json.loads(path.read_text())
    intervals = {
        view: {
            cell: {metric: StudyInterval(**interval) for metric, interval in metrics.items()}
            for cell, metrics in cells.items()
        }
        for view, cells in data["intervals"].items()
    }
    return StudyReference(data["name"], data["about"], intervals)


def reference_rows(
    views: Mapping[str, Mapping[str, list[PairedComparison]]], reference: StudyReference
) -> list[ReferenceRow]:
    """Each comparison of `views` (view -> cell -> comparisons) whose cell and metric the study has, beside its
    interval; the matched-L0 view first, metrics in the report's order."""
    rows = []
    for view in VIEWS:
        for cell, comparisons in views.get(view, {}).items():
            for comparison in sorted(comparisons, key=lambda c: list(METRICS_BY_KEY).index(c.metric)):
                study = reference.interval(view, cell, comparison.metric)
                if study is not None:
                    rows.append(
                        ReferenceRow(view, cell, comparison.metric, comparison.difference.mean, study)
                    )
    return rows


def reference_lines(rows: list[ReferenceRow], reference: StudyReference) -> list[str]:
    """The report's study-reference section: a sentence of what the study was, then one table row per
    difference with the study's interval and where the difference falls."""
    lines = ["## Against the published study", ""]
    if not rows:
        return [*lines, f"No cell of this report is a cell of {reference.name} ({reference.about}).", ""]
    inside = sum(row.placement == "inside" for row in rows)
    lines += [
        f"Each difference (masked - baseline) of this report beside the interval of the same cell and metric in "
        f"{reference.name} ({reference.about}): {inside} of {len(rows)} fall inside the study's 95 % interval. "
        "A difference outside it is not an effect of its own: one seed varies more than a mean over seeds.",
        "",
        "| view | cell | metric | this run | study mean [95 % interval] (seeds) | this run is |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row.view} | {table_text(row.cell)} | {METRICS_BY_KEY[row.metric].label} | {row.difference:+.4f} | "
        f"{row.study.mean:+.4f} [{row.study.low:+.4f}, {row.study.high:+.4f}] ({row.study.n}) | "
        f"{row.placement} |"
        for row in rows
    ]
    return [*lines, ""]


def write_study_reference(name: str, results_path: str | Path) -> Path:
    """Generate the shipped reference `name` from a study's `results.json`; returns the file written."""
    results = json.loads(Path(results_path).read_text())
    path = STUDY_REFERENCES_DIR / f"{name}.json"
    write_json_atomic(path, study_reference_from_results(name, results).to_dict())
    return path


if __name__ == "__main__":
    import sys

    print(write_study_reference(sys.argv[1], sys.argv[2]))
