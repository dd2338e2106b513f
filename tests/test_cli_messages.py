"""What long commands say: the demo's opening summary and its closing headline."""

from __future__ import annotations

from sae_mask_plugin.demo import describe_start, report_headline
from sae_mask_plugin.sweep import load_recipe


def test_demo_start_names_folder_model_hook_mask_token_and_cache_state(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_MASK_CACHE", str(tmp_path / "empty_cache"))
    text = describe_start(load_recipe("cpu_demo_quick"), tmp_path / "demo")
    assert f"output folder  {tmp_path / 'demo'}" in text
    assert "SmolLM2-135M-Instruct (converting it once into the cache first" in text
    assert "embedded corpus (building it once first" in text and "400,000 training tokens" in text
    assert "hook           blocks.6.hook_resid_post" in text
    assert "mask token     chosen by measurement" in text
    assert "3: matryoshka_batchtopk-k16-w4096-p0-s0, matryoshka_batchtopk-k32-w4096-p0-s0" in text
    assert (
        "mixing         SAELens's mixing buffer holds n_batches_in_buffer x 126 positions = 4,032 activations, "
        "2.0 training batches of 2,048, as in the published study the report is read against" in text
    )
    given = describe_start(load_recipe("cpu_demo_quick", {"masking.mask_token": "<repo_name>"}), tmp_path)
    assert "mask token     <repo_name>" in given


def test_report_headline_prefers_the_headline_section(tmp_path):
    report = tmp_path / "report.md"
    table = "| metric | baseline | masked |\n|---|---|---|\n| L0 | 43.5 | 58.9 |"
    report.write_text(f"# Report\n\nintro\n\n{table}\n\n## Runs\n\n| a |\n")
    assert report_headline(report) == table
    report.write_text(f"# Report\n\n## Headline\n\nmasked - baseline: no effect\n\n## Runs\n\n{table}\n")
    assert report_headline(report) == "masked - baseline: no effect"
    report.write_text("# Report\n\nnothing to compare\n")
    assert report_headline(report) == ""


def test_train_start_names_folder_model_hook_data_and_masking(tmp_path, monkeypatch):
    from sae_mask_plugin.training.cli import describe_start as describe_train
    from sae_mask_plugin.training.cli import parse_args

    monkeypatch.setenv("SAE_MASK_CACHE", str(tmp_path / "empty_cache"))
    cfg, _ = parse_args(["--p", "0.3", "--output_path", str(tmp_path / "sae")])
    text = describe_train(cfg)
    assert f"output folder  {tmp_path / 'sae'}" in text
    assert "SmolLM2-135M-Instruct (converting it once" in text and "embedded corpus (building it once" in text
    assert "hook           blocks.12.hook_resid_post" in text and "200,000 training tokens" in text
    assert "masking        p = 0.3, token, mask token chosen by measurement" in text
    baseline, _ = parse_args(["--p", "0", "--mask_token", "<repo_name>"])
    assert "masking        none (baseline, p = 0)" in describe_train(baseline)
