"""`research/study_shard_times.py`: the study's shard times table follows `shard_times.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from research import study_shard_times
from research.study_pages import block_names, fill_blocks

ROOT = Path(__file__).parents[2]
STUDY = ROOT / "docs" / "smollm2_study"


def _run(start: str, end: str | None, estimate: int = 60, printed: bool = True) -> dict[str, Any]:
    return {
        "shard": "2/5",
        "groups": ["p0-s2", "p0.3-token-s2"],
        "estimate_minutes": estimate,
        "estimate_printed_before_run": printed,
        "start": start,
        "end": end,
        "beside": None,
    }


def test_each_row_says_the_estimate_the_measured_time_and_how_far_apart_they_are():
    rows = study_shard_times.shard_times_table(
        [
            _run("2026-12-06T17:00:00Z", "2026-12-06T18:15:00Z", estimate=60),
            _run("2026-12-06T17:00:00Z", None, estimate=84, printed=False),
        ]
    )
    assert rows[2] == "| 2/5 | p0-s2, p0.3-token-s2 | 60 | 75 | -20% | nothing |"
    assert rows[3] == (
        "| 2/5 | p0-s2, p0.3-token-s2 | 84 (from this run's throughput) | not recorded | — | nothing |"
    )


def test_a_run_stopped_before_its_shards_end_is_not_compared_with_the_shards_estimate():
    stopped = _run("2026-12-06T17:00:00Z", "2026-12-06T17:30:00Z", estimate=60)
    stopped["stopped_during"] = "its evals"
    row = study_shard_times.shard_times_table([stopped])[2]
    assert row == "| 2/5 | p0-s2, p0.3-token-s2 | 60 | 30 | — (stopped during its evals) | nothing |"


def test_the_total_sums_measured_times_and_names_the_estimates_standing_in_for_unrecorded_ends():
    runs = [
        _run("2026-12-06T17:00:00Z", "2026-12-06T18:15:00Z"),
        _run("2026-12-06T19:00:00Z", "2026-12-06T19:50:00Z"),
    ]
    assert study_shard_times.shard_times_total(runs) == "Total: 2 h 05 min measured over 2 shard runs."
    assert study_shard_times.shard_times_total([*runs, _run("2026-12-06T20:00:00Z", None, estimate=84)]) == (
        "Total: 2 h 05 min measured over 2 shard runs; 3 h 29 min with the estimate standing in for the 1 whose "
        "end was not recorded."
    )


def test_an_end_before_its_start_is_an_error():
    with pytest.raises(ValueError, match="not after start"):
        study_shard_times.measured_minutes(_run("2026-12-06T18:00:00Z", "2026-12-06T17:00:00Z"))


def test_the_study_readme_table_is_regenerated_from_the_file():
    text = (STUDY / "README.md").read_text()
    assert {"shard-times", "masked-latents"} <= set(block_names(text))
    block = study_shard_times.shard_times_block(json.loads((STUDY / "shard_times.json").read_text())["runs"])
    assert fill_blocks(text, {"shard-times": block}, keep_others=True) == text, (
        "stale: python -m research.study_shard_times docs/smollm2_study/shard_times.json "
        "--update docs/smollm2_study/README.md"
    )
