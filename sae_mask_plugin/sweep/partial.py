"""A report written while some evals have no result: how it begins, so that the command line can tell (light)."""

from __future__ import annotations

from collections.abc import Sequence

PARTIAL_REPORT_MARK = "> **Partial report"
"""How a report written while evals were missing begins (`partial_report_notice`, as a report notice)."""


def partial_report_notice(missing: Sequence[str]) -> str:
    """The first line of a report written while evals are missing."""
    shown = "; ".join(missing[:6]) + (f"; and {len(missing) - 6} more" if len(missing) > 6 else "")
    return (
        f"{PARTIAL_REPORT_MARK.removeprefix('> ')}: {len(missing)} evals have no result yet** ({shown}). Another shard may still be "
        "running them (it rewrites this report when it finishes), or they failed (see the eval summaries)."
    )
