"""Checks shared by the report and study-page tests: every number in report.md is the one in results.json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sae_mask_plugin.report.records import RunRecord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_report_matches_results(report: str, results: dict[str, Any], report_dir: Path) -> None:
    """Comparison cells of both views, verdicts, every run's metric values and absorption gate rows in `report`
    equal those of `results`, and every plot `results` lists is a PNG file in `report_dir`."""
    views = [results["matched_l0_comparisons"], results["same_k_comparisons"]]
    for cell_results in (cell for view in views for cell in view.values()):
        for comparison in cell_results:
            difference = comparison["difference"]
            if difference["low"] is None:
                expected = f"{difference['mean']:.4f}"
            else:
                expected = f"{difference['mean']:.4f} [{difference['low']:.4f}, {difference['high']:.4f}]"
            assert expected in report
            assert comparison["verdict"] in report
    runs_table = report[report.index("## Appendix C: every run") :].splitlines()
    for run in results["runs"]:
        row = next(line for line in runs_table if line.startswith(f"| {run['name']} |"))
        values = re.findall(r"-?\d+\.\d{4}", row)
        assert values == [f"{value:.4f}" for value in _reported_metrics(run, results)]
    for gate in results.get("absorption_gate", []):
        eligible = gate.get("absorption_letters_eligible")
        expected = (
            f"| {gate['run']} | {gate['absorption_letters_passing']} / {gate['absorption_letters_needed']}"
            + ("" if eligible is None else f" (of {eligible})")
            + f" | {gate['headline']} |"
        )
        assert expected in report
    for name in results["plots"]:
        assert (report_dir / name).read_bytes()[:8] == PNG_SIGNATURE
        assert f"]({name})" in report


def _reported_metrics(run: dict[str, Any], results: dict[str, Any]) -> list[float]:
    from sae_mask_plugin.report.records import METRICS

    reported = [spec.key for spec in METRICS if any(spec.key in r["metrics"] for r in results["runs"])]
    return [run["metrics"][key] for key in reported if key in run["metrics"]]


def run_record(p: float, seed: int, k: int = 16, **metrics: float) -> RunRecord:
    """A hand-made report record: one SAE at mask probability `p`, `seed` and `k`, with `metrics`."""
    return RunRecord(
        name=f"run-p{p}-k{k}-s{seed}",
        sae_path=f"/nowhere/run-p{p}-k{k}-s{seed}",
        model_name="m",
        hook_name="blocks.6.hook_resid_post",
        architecture="batchtopk",
        d_sae=256,
        k=k,
        seed=seed,
        training_tokens=1000,
        mask_p=p,
        mask_strategy=None if p == 0 else "token",
        mask_token=None if p == 0 else "<repo_name>",
        metrics=metrics,
    )
