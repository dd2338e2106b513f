"""Baseline-vs-masked comparison reports: paired statistics, tables and plots.

Names load on first use, so `sae-mask compare --help` imports no SAELens or matplotlib."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.report.build import ReportFiles, build_report, paired_comparisons
    from sae_mask_plugin.report.collect import collect_runs
    from sae_mask_plugin.report.matching import interpolate_in_log_l0, matched_l0_pairs
    from sae_mask_plugin.report.records import METRICS, RunRecord, read_sae_record

__all__ = [
    "METRICS",
    "ReportFiles",
    "RunRecord",
    "build_report",
    "collect_runs",
    "interpolate_in_log_l0",
    "matched_l0_pairs",
    "paired_comparisons",
    "read_sae_record",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["ReportFiles", "build_report", "paired_comparisons"], f"{__name__}.build"),
        "collect_runs": f"{__name__}.collect",
        **dict.fromkeys(["interpolate_in_log_l0", "matched_l0_pairs"], f"{__name__}.matching"),
        **dict.fromkeys(["METRICS", "RunRecord", "read_sae_record"], f"{__name__}.records"),
    },
)
