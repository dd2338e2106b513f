"""The study's shard wall times against the dry run's estimates, as a generated markdown table.

    python -m research.study_shard_times docs/smollm2_study/shard_times.json [--update docs/smollm2_study/README.md]

Reads the record of each shard run (`{"runs": [{"shard", "groups", "estimate_minutes", "estimate_printed_before_run",
"start", "end", "beside", ...}]}`, times in ISO 8601 UTC; an estimate not printed before its run says where it
came from in `estimate_source`) and prints one row per run: the estimate, the measured wall time and how far the
estimate is from it, or with `--update` rewrites the markdown file's `shard-times` generated block with it. A run
whose end was not recorded shows its estimate and no measurement; a run stopped before its shard's end
(`"stopped_during": "<what it was running>"`) shows both, and no comparison.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from research.study_pages import update_block

BLOCK_NAME = "shard-times"
OWN_THROUGHPUT = "from this run's throughput"
"""Where an estimate not printed before its run came from, unless the run says (`estimate_source`)."""


def measured_minutes(run: Mapping[str, Any]) -> float | None:
    """The run's wall time in minutes, or None when its end was not recorded."""
    if run.get("end") is None:
        return None
    start, end = (datetime.fromisoformat(run[key].replace("Z", "+00:00")) for key in ("start", "end"))
    if end <= start:
        raise ValueError(f"shard {run['shard']}: end {run['end']} is not after start {run['start']}")
    return (end - start).total_seconds() / 60


def shard_times_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """One markdown row per shard run: groups, estimate, measured wall time, estimate error, what ran beside."""
    lines = [
        "| shard | groups | estimate (min) | measured (min) | estimate vs measured | beside it |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        measured = measured_minutes(run)
        estimate = run["estimate_minutes"]
        estimate_text = (
            f"{estimate}"
            if run["estimate_printed_before_run"]
            else f"{estimate} ({run.get('estimate_source', OWN_THROUGHPUT)})"
        )
        if measured is None:
            measured_text, error_text = "not recorded", "—"
        else:
            measured_text = f"{measured:.0f}"
            error_text = (
                f"— (stopped during {run['stopped_during']})"
                if run.get("stopped_during")
                else f"{(estimate - measured) / measured:+.0%}"
            )
        lines.append(
            f"| {run['shard']} | {', '.join(run['groups'])} | {estimate_text} | {measured_text} | {error_text} | "
            f"{run.get('beside') or 'nothing'} |"
        )
    return lines


def _hours_and_minutes(minutes: float) -> str:
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest:02d} min"


def shard_times_total(runs: Sequence[Mapping[str, Any]]) -> str:
    """The study's compute in one line: the measured wall times summed, and with the estimate standing in for
    each run whose end was not recorded."""
    measured: list[float] = []
    unrecorded: list[int] = []
    for run in runs:
        minutes = measured_minutes(run)
        if minutes is None:
            unrecorded.append(run["estimate_minutes"])
        else:
            measured.append(minutes)
    total = f"Total: {_hours_and_minutes(sum(measured))} measured over {len(measured)} shard runs"
    if unrecorded:
        total += (
            f"; {_hours_and_minutes(sum(measured) + sum(unrecorded))} with the estimate standing in for the "
            f"{len(unrecorded)} whose end was not recorded"
        )
    return total + "."


def shard_times_block(runs: Sequence[Mapping[str, Any]]) -> str:
    """The study page's `shard-times` block: the table, then the total."""
    return "\n".join([*shard_times_table(runs), "", shard_times_total(runs)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shard_times", type=Path, help="the study's shard_times.json")
    parser.add_argument("--update", type=Path, metavar="MARKDOWN", help=f"rewrite its {BLOCK_NAME} block")
    args = parser.parse_args()
    block = shard_times_block(json.loads(args.shard_times.read_text())["runs"])
    if args.update is None:
        print(block)
        return
    update_block(args.update, BLOCK_NAME, block)
    print(f"updated: {args.update}")


if __name__ == "__main__":
    main()
