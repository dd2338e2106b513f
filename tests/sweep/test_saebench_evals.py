"""SCR/TPP in a sweep: recorded as not run where the hub is out of reach, run through the eval registry (each SAE in
its own LLM dtype, a failing SAE recorded while the others go on) and gathered by the report where it is reached.

SAEBench's per-SAE SCR/TPP computation needs hub datasets, so where it would run it is replaced by a stand-in that
returns SAEBench-shaped numbers; what is tested is the plugin's routing and SAEBench's output built around it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from sae_lens import SAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata

from sae_mask_plugin.evals import runner
from sae_mask_plugin.evals.common import LazyModel
from sae_mask_plugin.evals.scr_and_tpp import eval_config as scr_tpp_config
from sae_mask_plugin.evals.scr_and_tpp import main as scr_tpp_main
from sae_mask_plugin.report import collect_runs
from sae_mask_plugin.sweep import saebench


def _saved_sae(folder: Path, llm_dtype: str = "float32") -> Path:
    """A saved SAE on the 8-wide `tiny` model, named in its metadata (so the stand-in knows which it scores)."""
    metadata = SAEMetadata(
        model_name="tiny", hook_name="blocks.0.hook_resid_post", sae_name=folder.name, llm_dtype=llm_dtype
    )
    SAE.from_dict(StandardSAEConfig(d_in=8, d_sae=16, metadata=metadata).to_dict()).save_model(str(folder))
    return folder


@pytest.fixture
def tiny_hub_model(monkeypatch):
    """`tiny` reads as a hub model 8 wide with one layer, and the hub as reachable; no model is ever loaded."""
    monkeypatch.setattr(runner, "model_dimensions", lambda name: {"n_layers": 1, "d_model": 8, "d_mlp": 32})
    monkeypatch.setattr("sae_mask_plugin.embedded.model.hub_reachable", lambda: True)
    monkeypatch.setattr(LazyModel, "get", lambda self: f"model {self.model_name} in {self.llm_dtype}")


def test_unreachable_hub_records_why_and_adds_no_metric(tmp_path, monkeypatch):
    sae_dir = _saved_sae(tmp_path / "saes" / "run-a")
    monkeypatch.setattr("sae_mask_plugin.embedded.model.hub_reachable", lambda: False)
    status = saebench.run_scr_and_tpp([sae_dir], ["scr", "tpp"], "tiny", tmp_path / "evals" / "g", "cpu")
    assert set(status) == {"scr", "tpp"} and all(value.startswith("not run") for value in status.values())
    assert "cannot reach the hub" in status["scr"]
    recorded = json.loads((tmp_path / "evals" / "g" / saebench.STATUS_FILENAME).read_text())
    assert recorded == status
    (record,) = collect_runs([tmp_path / "saes", tmp_path / "evals"])
    assert "scr_metric_threshold_20" not in record.metrics


def _fake_saebench(calls: list, failing: str | None = None):
    """A stand-in of SAEBench's `run_eval_single_sae` returning SAEBench-shaped results, recording its calls."""

    def run_eval_single_sae(config, sae, model, device, artifacts_folder):
        eval_type = "scr" if config.perform_scr else "tpp"
        name = sae.cfg.metadata.sae_name
        calls.append((eval_type, name, model, config.llm_dtype, sae.dtype, artifacts_folder))
        if name == failing:
            raise RuntimeError("probe diverged")
        offset = 0.1 if name == "run-a" else 1.1
        if eval_type == "scr":
            metric = {"scr_metric_threshold_20": offset}
            return {**metric, "LabHC/bias_in_bios_class_set1_scr_professor_nurse_results": metric}, {}
        metric = {"tpp_threshold_20_total_metric": offset + 0.1}
        return {**metric, "canrager/amazon_reviews_mcauley_1and5_tpp_results": metric}, {
            "per": {"class": 1.0}
        }

    return run_eval_single_sae


def test_saebench_results_reach_the_report_records_in_each_saes_dtype(tmp_path, monkeypatch, tiny_hub_model):
    sae_dirs = [_saved_sae(tmp_path / "saes" / "run-a"), _saved_sae(tmp_path / "saes" / "run-b", "bfloat16")]
    calls: list = []
    monkeypatch.setattr(scr_tpp_main, "run_eval_single_sae", _fake_saebench(calls))
    out = tmp_path / "evals" / "g" / "saebench"
    status = saebench.run_scr_and_tpp(sae_dirs, ["scr", "tpp"], "tiny", out, "cpu")
    assert all(value.startswith("done") for value in status.values())
    assert json.loads((out / saebench.STATUS_FILENAME).read_text()) == status
    assert [call[:2] for call in calls] == [
        ("scr", "run-a"),
        ("tpp", "run-a"),
        ("scr", "run-b"),
        ("tpp", "run-b"),
    ]
    assert [(model, dtype) for _, _, model, dtype, _, _ in calls] == [
        ("model tiny in float32", "float32")
    ] * 2 + [("model tiny in bfloat16", "bfloat16")] * 2  # each SAE's recorded LLM dtype, SAE cast to it
    assert [sae_dtype for *_, sae_dtype, _ in calls] == [torch.float32] * 2 + [torch.bfloat16] * 2
    assert all(Path(artifacts).is_relative_to(out) for *_, artifacts in calls)  # nothing in site-packages

    result = json.loads((out / "tpp" / "run-b_custom_sae_eval_results.json").read_text())
    assert result["eval_type_id"] == "tpp" and result["eval_config"]["llm_batch_size"] == 32
    assert (
        result["eval_result_details"][0]["dataset_name"]
        == "canrager/amazon_reviews_mcauley_1and5_tpp_results"
    )
    records = {record.name: record for record in collect_runs([tmp_path / "saes", tmp_path / "evals"])}
    assert records["run-a"].metrics["scr_metric_threshold_20"] == 0.1
    assert records["run-b"].metrics["tpp_threshold_20_total_metric"] == pytest.approx(1.2)


def test_a_failing_sae_is_recorded_and_the_others_go_on(tmp_path, monkeypatch, tiny_hub_model):
    sae_dirs = [_saved_sae(tmp_path / "saes" / name) for name in ("run-a", "run-b")]
    calls: list = []
    monkeypatch.setattr(scr_tpp_main, "run_eval_single_sae", _fake_saebench(calls, failing="run-a"))
    out = tmp_path / "saebench"
    status = saebench.run_scr_and_tpp(sae_dirs, ["scr"], "tiny", out, "cpu")
    assert status == {"scr": f"failed for run-a (errors in {out / 'scr'})"}
    assert not (out / saebench.STATUS_FILENAME).exists()  # a rerun retries the failed SAE
    assert [call[1] for call in calls] == ["run-a", "run-b"]
    assert "probe diverged" in json.loads((out / "scr" / "run-a_custom_sae_error.json").read_text())["error"]
    assert (out / "scr" / "run-b_custom_sae_eval_results.json").is_file()

    monkeypatch.setattr(scr_tpp_main, "run_eval_single_sae", _fake_saebench(calls))
    assert saebench.run_scr_and_tpp(sae_dirs, ["scr"], "tiny", out, "cpu")["scr"].startswith("done")
    assert [call[1] for call in calls[2:]] == ["run-a"]  # run-b's result is kept
    assert not (out / "scr" / "run-a_custom_sae_error.json").exists()


def test_scr_and_tpp_configs_run_their_own_eval():
    assert scr_tpp_config.ScrEvalConfig().perform_scr and not scr_tpp_config.TppEvalConfig().perform_scr
    with pytest.raises(ValueError, match="perform_scr must be False"):
        scr_tpp_config.TppEvalConfig(perform_scr=True)
    with pytest.raises(ValueError, match="llm_dtype must be one of"):
        scr_tpp_config.ScrEvalConfig(llm_dtype="float16")
    assert list(scr_tpp_config.SCR_TPP_DATASETS) == scr_tpp_config.ScrEvalConfig().dataset_names
