"""Baseline-vs-masked comparison reports: paired statistics, tables and plots."""

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
