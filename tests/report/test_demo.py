"""`sae-mask demo` end to end on a tiny configuration of the real embedded SmolLM2, and its output folder rules."""

from __future__ import annotations

import json

import pytest
from report_checks import assert_report_matches_results

from sae_mask_plugin import demo
from sae_mask_plugin.cli import main as sae_mask

TINY_DEMO = {
    "training_tokens": 8192,
    "grid": [
        {"architecture": "matryoshka_batchtopk", "d_sae": 256, "k": [8, 16], "p": [0.0, 0.3], "seed": 0}
    ],
    "runner.calibration_tokens": 4096,
    "runner.context_size": 64,
    "runner.store_batch_size_prompts": 8,
    "runner.n_batches_in_buffer": 10,  # SAELens mixes n_batches_in_buffer x 62 positions: at least one batch
    "runner.train_batch_size_tokens": 512,
    "evals": ["core", "ood"],
    "eval_options": {"ood_tasks": ["6_hist_fig_isamerican"]},
}


@pytest.mark.slow
def test_tiny_demo_writes_a_consistent_report_and_resumes(tmp_path):
    out = tmp_path / "demo"
    report = demo.run_demo("quick", out, overrides=TINY_DEMO)

    results = json.loads((report.parent / "results.json").read_text())
    assert_report_matches_results(report.read_text(), results, report.parent)
    assert set(results["plots"]) == {"metrics_vs_l0.png", "ood_accuracy_vs_p.png", "differences.png"}
    assert sorted(run["mask_p"] for run in results["runs"]) == [0.0, 0.0, 0.3, 0.3]
    assert all({"sae_ood_accuracy", "sae_ood_gap", "l0"} <= run["metrics"].keys() for run in results["runs"])
    assert all(run["calibration"]["calibration_tokens"] == 4096 for run in results["runs"])
    assert set(results["same_k_comparisons"]) == {
        f"p=0.3 token | matryoshka_batchtopk w256 k{k}" for k in (8, 16)
    }
    # each masked SAE is either matched within its baseline's L0 range or listed as unmatched, never both
    matched = {cell for cell in results["matched_l0_comparisons"]}
    unmatched = {entry["cell"] for entry in results["unmatched"]}
    assert matched | unmatched == set(results["same_k_comparisons"]) and not matched & unmatched
    text = report.read_text()
    assert "SmolLM2-135M-Instruct" in text and "blocks.6.hook_resid_post" in text and "8192" in text
    # the tiny grid's cells are not the study's
    assert "No cell of this report is a cell of smollm2_study_v2" in text
    assert "One seed per condition" in text and "no interval is available" in text
    assert "## Headline" in text and "calibrated to L0 = k on 4096 clean tokens for 4 of 4 SAEs" in text

    weights = sorted(out.glob("saes/*/sae_weights.safetensors"))
    assert len(weights) == 4
    stamps = [path.stat().st_mtime_ns for path in weights]
    demo.run_demo("quick", out, overrides=TINY_DEMO)  # resumes: nothing is retrained
    assert [path.stat().st_mtime_ns for path in weights] == stamps


def test_demo_refuses_a_folder_that_is_not_a_demo_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(demo.DemoFolderError, match="not a previous run of the demo"):
        demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=False)
    assert sae_mask(["demo", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert json.loads((tmp_path / demo.MARKER_FILENAME).read_text())["recipe"] == "cpu_demo_quick"


def test_demo_refuses_the_other_modes_folder_and_bad_overrides(tmp_path, capsys):
    demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=False)
    (tmp_path / "saes").mkdir()
    demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=False)  # a previous quick run resumes
    with pytest.raises(demo.DemoFolderError, match="holds a 'cpu_demo_quick' demo run"):
        demo.prepare_output_folder(tmp_path, "cpu_demo_full", force=False)
    assert sae_mask(["demo", "--out", str(tmp_path / "new"), "--set", "training_tokens=-5"]) == 2
    assert "training_tokens" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # bad input is refused before anything is written


def test_a_folder_of_another_demo_version_is_refused_with_the_reason(tmp_path, capsys):
    version = demo.demo_version("cpu_demo_quick", None)
    assert version == demo.demo_version("cpu_demo_quick", {})
    assert version != demo.demo_version("cpu_demo_quick", {"training_tokens": 50_000})
    demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=False, version=version)
    (tmp_path / "saes").mkdir()
    demo.prepare_output_folder(
        tmp_path, "cpu_demo_quick", force=False, version=version
    )  # the same demo resumes
    with pytest.raises(demo.DemoFolderError, match="another version of the 'cpu_demo_quick' demo"):
        demo.prepare_output_folder(tmp_path, "cpu_demo_quick", force=False, version="0123456789ab")
    older = tmp_path / "older"
    demo.prepare_output_folder(older, "cpu_demo_quick", force=False)  # a marker written before versions
    (older / "saes").mkdir()
    assert sae_mask(["demo", "--out", str(older)]) == 2
    assert "recipe or settings have changed since" in capsys.readouterr().err


def test_the_published_example_report_has_healthy_baselines():
    """docs/example_report/ is what `sae-mask demo` wrote: with AuxK's short-run window every baseline keeps at least
    0.9 of its latents alive on the core eval's 32,768 tokens (SAELens's 1,000-step window had left half dead)."""
    from pathlib import Path

    results = json.loads((Path(__file__).parents[2] / "docs/example_report/results.json").read_text())
    baselines = [run for run in results["runs"] if run["mask_p"] == 0]
    assert len(baselines) == 2
    for run in baselines:
        assert run["metrics"]["frac_alive"] >= 0.9, run["name"]
        assert run["metrics"]["total_tokens_eval_sparsity_variance"] >= 32_768
