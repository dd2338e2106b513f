"""`sae-mask compare` on two saved runs: a baseline trained with plain SAELens and a masked one from the plugin."""

from __future__ import annotations

import json

import pytest
from report_checks import assert_report_matches_results
from sae_lens import BatchTopKTrainingSAEConfig, LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner
from sae_lens.config import LoggingConfig

from sae_mask_plugin import (
    EMBEDDED_MODEL_NAME,
    MaskedLanguageModelSAERunnerConfig,
    MaskedLanguageModelSAETrainingRunner,
    MaskingConfig,
)
from sae_mask_plugin.cli import main as sae_mask
from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.evals import evaluate_saes

pytestmark = pytest.mark.slow

SHARED = {
    "model_name": EMBEDDED_MODEL_NAME,
    "hook_name": "blocks.6.hook_resid_post",
    "is_dataset_tokenized": False,
    "context_size": 64,
    "store_batch_size_prompts": 8,
    "n_batches_in_buffer": 8,
    "train_batch_size_tokens": 512,
    "training_tokens": 8192,
    "lr": 3e-3,
    "seed": 0,
    "exclude_special_tokens": True,
    "device": "cpu",
    "logger": LoggingConfig(log_to_wandb=False),
}


def _sae_config() -> BatchTopKTrainingSAEConfig:
    return BatchTopKTrainingSAEConfig(d_in=576, d_sae=256, k=16, topk_threshold_lr=0.05)


def test_compare_pairs_a_plain_saelens_baseline_with_a_masked_run(tmp_path, embedded_model):
    corpus = load_embedded_corpus(seed=0, show_progress=False)
    plain_dir, masked_dir = tmp_path / "plain" / "sae", tmp_path / "masked" / "sae"
    LanguageModelSAETrainingRunner(
        LanguageModelSAERunnerConfig(sae=_sae_config(), output_path=str(plain_dir), **SHARED),
        override_model=embedded_model,
        override_dataset=corpus,
    ).run()
    MaskedLanguageModelSAETrainingRunner(
        MaskedLanguageModelSAERunnerConfig(
            sae=_sae_config(),
            output_path=str(masked_dir),
            masking=MaskingConfig(p=0.3, mask_token="<repo_name>"),
            **SHARED,
        ),
        override_model=embedded_model,
        override_dataset=corpus,
    ).run()
    for run in ("plain", "masked"):
        evaluate_saes(
            [tmp_path / run / "sae"],
            ["ood"],
            out_dir=tmp_path / run / "evals",
            ood_tasks=["6_hist_fig_isamerican"],
        )

    out = tmp_path / "report"
    assert sae_mask(["compare", str(tmp_path / "plain"), str(tmp_path / "masked"), "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text())
    assert_report_matches_results((out / "report.md").read_text(), results, out)
    by_p = {run["mask_p"]: run for run in results["runs"]}
    assert set(by_p) == {0.0, 0.3}
    assert by_p[0.0]["mask_strategy"] is None and by_p[0.3]["mask_token"] == "<repo_name>"
    assert by_p[0.0]["llm_dtype"] is None  # stock SAELens records no LLM dtype
    assert by_p[0.3]["llm_dtype"] == "float32"
    assert all(run["architecture"] == "batchtopk" and run["k"] == 16 for run in results["runs"])
    (cell,) = results["same_k_comparisons"]
    assert cell == "p=0.3 token | batchtopk w256 k16"
    assert {c["metric"] for c in results["same_k_comparisons"][cell]} >= {"sae_ood_accuracy", "sae_ood_gap"}
    assert results["matched_l0_comparisons"] == {}  # one k and no core eval: nothing to match on

    gated = tmp_path / "report-with-rules"
    argv = ["compare", str(tmp_path / "plain"), str(tmp_path / "masked"), "--out", str(gated)]
    assert sae_mask([*argv, "--recipe", "smollm2_study_v2"]) == 0  # the recipe's gate written before its runs
    gate = json.loads((gated / "results.json").read_text())["training_gate"]
    assert gate["plateau_explained_variance"] == {
        "matryoshka_batchtopk w4096 k16": 0.806,
        "matryoshka_batchtopk w4096 k32": 0.831,
    }


def test_compare_refuses_folders_without_saes(tmp_path, capsys):
    assert sae_mask(["compare", str(tmp_path), "--out", str(tmp_path / "report")]) == 2
    assert "no saved SAE" in capsys.readouterr().err
    assert sae_mask(["compare", str(tmp_path / "missing"), "--out", str(tmp_path / "report")]) == 2
    assert not (tmp_path / "report").exists()
