"""Every shipped recipe expands offline into the SAELens configs it promises; no model is loaded."""

from __future__ import annotations

import pytest
from transformer_lens import HookedTransformer

import sae_mask_plugin.sweep.execute as execute
from sae_mask_plugin.sweep import RECIPES_DIR, Recipe, format_plan, load_recipe, main, plan
from sae_mask_plugin.training.config import MaskedMultiSAETrainingRunnerConfig

RECIPE_FILES = sorted(RECIPES_DIR.glob("*.yaml"))
PAPER_P = {0.0, 0.1, 0.2, 0.3, 0.5}
PAPER_WIDTHS = {4096, 16384, 65536}


def _configs(recipe: Recipe) -> list[MaskedMultiSAETrainingRunnerConfig]:
    return [group.runner_config(recipe) for group in plan(recipe)]


def test_every_issue_recipe_is_shipped() -> None:
    assert {path.stem for path in RECIPE_FILES} >= {
        "paper_pythia160m",
        "paper_gemma2_2b",
        "architecture_sweep",
        "mask_strategy_ablation",
        "cpu_demo_quick",
        "cpu_demo_full",
    }


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda path: path.stem)
def test_recipe_expands_into_consistent_saelens_configs(path) -> None:
    assert path.read_text().startswith("#"), "every recipe is documented by a comment block at its top"
    recipe = load_recipe(path)
    configs = _configs(recipe)
    runs = {run.name: run for run in recipe.runs}
    assert sum(len(cfg.saes) for cfg in configs) == len(runs)
    for cfg in configs:
        assert cfg.model_name == recipe.model_name
        assert set(cfg.hook_names_per_sae.values()) == {recipe.hook_name}
        assert cfg.training_tokens == recipe.training_tokens
        assert cfg.logger.log_to_wandb is False
        for name, sae_cfg in cfg.saes.items():
            run = runs[name]
            assert sae_cfg.d_in == recipe.d_in
            assert sae_cfg.architecture() == run.architecture == name.split("-")[0]
            assert f"-w{sae_cfg.d_sae}-" in name
            assert f"-p{cfg.masking.p:g}" in name and name.endswith(f"-s{cfg.seed}")
            assert run.masking == cfg.masking and run.seed == cfg.seed
            if hasattr(sae_cfg, "k"):
                assert f"-k{sae_cfg.k:g}-" in name
            if sae_cfg.architecture() == "matryoshka_batchtopk":
                assert sae_cfg.matryoshka_widths[-1] == sae_cfg.d_sae
    assert recipe.name in format_plan(recipe, plan(recipe))


@pytest.mark.parametrize(
    ("name", "model", "hook", "d_in"),
    [
        ("paper_pythia160m", "pythia-160m-deduped", "blocks.8.hook_resid_post", 768),
        ("paper_gemma2_2b", "gemma-2-2b", "blocks.12.hook_resid_post", 2304),
    ],
)
def test_paper_recipes_cover_the_paper_grid(name: str, model: str, hook: str, d_in: int) -> None:
    recipe = load_recipe(name)
    assert (recipe.model_name, recipe.hook_name, recipe.d_in) == (model, hook, d_in)
    saes = [sae for cfg in _configs(recipe) for sae in cfg.saes.values()]
    assert {sae.architecture() for sae in saes} == {"matryoshka_batchtopk"}
    assert {sae.d_sae for sae in saes} == PAPER_WIDTHS
    assert len({sae.k for sae in saes}) >= 3
    assert {run.masking.p for run in recipe.runs} == PAPER_P
    assert len(saes) == len(PAPER_WIDTHS) * len({sae.k for sae in saes}) * len(PAPER_P)
    assert {"absorption", "sparse_probing", "ood", "scr", "tpp"} <= set(recipe.evals) and recipe.report
    assert recipe.device == "cuda" and recipe.runner["autocast"] is True
    assert "matryoshka_batchtopk-k20-w4096-p0.3-token-s0" in {run.name for run in recipe.runs}


def test_architecture_sweep_and_ablation_cover_their_axes() -> None:
    sweep = load_recipe("architecture_sweep")
    assert {run.architecture for run in sweep.runs} == {"standard", "topk", "batchtopk", "jumprelu", "gated"}
    assert {run.sae.d_sae for run in sweep.runs} == {16384}
    for arch in ("standard", "topk", "batchtopk", "jumprelu", "gated"):
        assert {run.masking.p for run in sweep.runs if run.architecture == arch} == {0.0, 0.3}
    ablation = load_recipe("mask_strategy_ablation")
    masked = [run for run in ablation.runs if run.masking.is_active]
    assert {run.masking.strategy for run in masked} == {"token", "random", "unigram", "span"}
    assert {run.masking.loss_positions for run in masked} == {"all", "unmasked"}
    assert any(not run.masking.is_active for run in ablation.runs)


def test_cpu_recipes_use_the_embedded_default() -> None:
    quick, full = load_recipe("cpu_demo_quick"), load_recipe("cpu_demo_full")
    for recipe in (quick, full):
        assert recipe.model_name == "SmolLM2-135M-Instruct" and recipe.dataset == "embedded"
        assert recipe.device == "cpu" and recipe.d_in == 576
        assert {run.architecture for run in recipe.runs} == {"matryoshka_batchtopk"}
    assert {run.masking.p for run in quick.runs} == {0.0, 0.3} and {run.seed for run in quick.runs} == {0}
    assert len(plan(quick)) == 2
    assert {run.masking.p for run in full.runs} == {0.0, 0.1, 0.3, 0.5}
    assert len({run.seed for run in full.runs}) >= 3 and len({run.sae.k for run in full.runs}) >= 2
    assert all(len(group.runs) == len({run.sae.k for run in full.runs}) for group in plan(full))


def test_dry_run_prints_the_plan_without_loading_a_model(monkeypatch, capsys, tmp_path) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not load a model or train")

    monkeypatch.setattr(HookedTransformer, "from_pretrained_no_processing", refuse)
    monkeypatch.setattr(HookedTransformer, "from_pretrained", refuse)
    monkeypatch.setattr(execute, "MaskedMultiSAETrainingRunner", refuse)
    assert main(["paper_gemma2_2b", "--dry-run", "--shard", "1/3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "60 runs in 15 groups" in out and "shard 1/3: 5 groups, 20 runs" in out
    assert "GiB" in out and "LLM tokens" in out
    assert out.count("[todo]") == 20
