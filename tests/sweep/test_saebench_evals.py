"""SCR/TPP through SAEBench: recorded as not run when the hub is out of reach, gathered by the report when run.

SAEBench's own SCR/TPP `run_eval` needs hub datasets, so where it would run it is replaced by a stand-in that
writes a result in SAEBench's layout; what is tested is the plugin's routing around it.
"""

from __future__ import annotations

import json
from pathlib import Path

import sae_bench.evals.scr_and_tpp.main as scr_and_tpp_main
from sae_lens import SAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata

from sae_mask_plugin.report import collect_runs
from sae_mask_plugin.sweep import saebench


def _saved_sae(folder: Path) -> Path:
    metadata = SAEMetadata(model_name="tiny", hook_name="blocks.0.hook_resid_post")
    SAE.from_dict(StandardSAEConfig(d_in=8, d_sae=16, metadata=metadata).to_dict()).save_model(str(folder))
    return folder


def test_unreachable_hub_records_why_and_adds_no_metric(tmp_path, monkeypatch):
    sae_dir = _saved_sae(tmp_path / "saes" / "run-a")
    monkeypatch.setattr(saebench, "hub_reachable", lambda: False)
    status = saebench.run_scr_and_tpp([sae_dir], ["scr", "tpp"], "tiny", tmp_path / "evals" / "g", "cpu")
    assert set(status) == {"scr", "tpp"} and all(value.startswith("not run") for value in status.values())
    recorded = json.loads((tmp_path / "evals" / "g" / saebench.STATUS_FILENAME).read_text())
    assert recorded == status
    (record,) = collect_runs([tmp_path / "saes", tmp_path / "evals"])
    assert "scr_metric_threshold_20" not in record.metrics


def test_saebench_results_reach_the_report_records(tmp_path, monkeypatch):
    sae_dirs = [_saved_sae(tmp_path / "saes" / name) for name in ("run-a", "run-b")]
    calls = []

    def fake_run_eval(config, selected_saes, device, output_path, **kwargs):
        eval_type = "scr" if config.perform_scr else "tpp"
        calls.append((eval_type, [name for name, _ in selected_saes], kwargs["artifacts_path"]))
        for index, (name, _) in enumerate(selected_saes):
            metrics = (
                {"scr_metrics": {"scr_metric_threshold_20": 0.1 + index}}
                if eval_type == "scr"
                else {"tpp_metrics": {"tpp_threshold_20_total_metric": 0.2 + index}}
            )
            result = Path(output_path) / eval_type / f"{name}_custom_sae_eval_results.json"
            result.parent.mkdir(parents=True, exist_ok=True)
            result.write_text(json.dumps({"eval_result_metrics": metrics}))

    monkeypatch.setattr(saebench, "hub_reachable", lambda: True)
    monkeypatch.setattr(scr_and_tpp_main, "run_eval", fake_run_eval)
    out = tmp_path / "evals" / "g" / "saebench"
    status = saebench.run_scr_and_tpp(sae_dirs, ["scr", "tpp"], "tiny", out, "cpu")
    assert all(value.startswith("done") for value in status.values())
    assert [call[:2] for call in calls] == [("scr", ["run-a", "run-b"]), ("tpp", ["run-a", "run-b"])]
    assert all(Path(artifacts).is_relative_to(out) for _, _, artifacts in calls)  # nothing in site-packages

    records = {record.name: record for record in collect_runs([tmp_path / "saes", tmp_path / "evals"])}
    assert records["run-a"].metrics["scr_metric_threshold_20"] == 0.1
    assert records["run-b"].metrics["tpp_threshold_20_total_metric"] == 1.2
