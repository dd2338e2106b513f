"""The paper recipes' hub path, offline: stand-in checkpoints (random weights, exact architecture) under the real
hub names, loaded by TransformerLens by name, and `sae-mask sweep paper_pythia160m` end to end on CPU.

The stand-ins come from `research/hub_standins.py` into a temporary `HF_HOME`; the sweep runs as a user runs
it (the console command in a subprocess, `HF_HUB_OFFLINE=1`), with `research/paper_recipe_standin.py`'s small
overrides. Gemma-2-2B is checked by config only here (its full-size stand-in takes 5 GB; its end-to-end run is
the documented script).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from sae_lens import SAE

from research import hub_standins as standins
from research import paper_recipe_standin as runner_script
from sae_mask_plugin.sae_metadata import read_masking_metadata
from sae_mask_plugin.sweep.recipe import load_recipe

RUN_NAMES = ["matryoshka_batchtopk-k8-w256-p0-s0", "matryoshka_batchtopk-k8-w256-p0.3-token-s0"]

pytestmark = pytest.mark.xdist_group("pythia_standin")  # one worker builds the stand-in hub


def test_standin_configs_match_transformer_lens_and_the_recipes():
    """Gemma-2-2B's stand-in config gives TransformerLens's own Gemma-2-2B table; both stand-ins have the
    recipes' parameter counts and widths."""
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config
    from transformers import AutoConfig, AutoModelForCausalLM

    table = get_pretrained_model_config("gemma-2-2b")  # name-based in TransformerLens: reads no config file
    gemma = AutoConfig.for_model(**standins.GEMMA_2_2B.config)
    assert (table.d_model, table.n_layers, table.n_heads, table.n_key_value_heads, table.d_head) == (
        gemma.hidden_size,
        gemma.num_hidden_layers,
        gemma.num_attention_heads,
        gemma.num_key_value_heads,
        gemma.head_dim,
    )
    assert (table.d_mlp, table.d_vocab, table.window_size, table.eps) == (
        gemma.intermediate_size,
        gemma.vocab_size,
        gemma.sliding_window,
        gemma.rms_norm_eps,
    )
    assert (table.attn_scores_soft_cap, table.output_logits_soft_cap) == (
        gemma.attn_logit_softcapping,
        gemma.final_logit_softcapping,
    )
    for recipe_name, standin in [
        ("paper_gemma2_2b", standins.GEMMA_2_2B),
        ("paper_pythia160m", standins.PYTHIA_160M),
    ]:
        recipe = load_recipe(recipe_name)
        assert recipe.model_params == standin.parameters
        assert recipe.d_in == standin.config["hidden_size"]
    with torch.device("meta"):
        gemma_model = AutoModelForCausalLM.from_config(gemma)
    assert sum(p.numel() for p in gemma_model.parameters()) == standins.GEMMA_2_2B.parameters


@pytest.fixture(scope="module")
def standin_home(pythia_standin_home) -> Path:
    return pythia_standin_home


def _offline_env(home: Path) -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, **runner_script.offline_environment(home)}
    env["PYTHONPATH"] = os.pathsep.join([repo, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(code: str, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=_offline_env(home), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_pythia_standin_loads_by_its_recipe_name_offline(standin_home: Path):
    snapshot = standins.snapshot_dir(standin_home, "EleutherAI/pythia-160m-deduped")
    assert json.loads((snapshot / "config.json").read_text())["standin"].startswith("STAND-IN")
    assert "STAND-IN" in json.loads((snapshot / "tokenizer_config.json").read_text())["standin"]
    out = _run(
        "import json, torch; from sae_mask_plugin.embedded.model import load_model, hub_reachable;"
        "m = load_model('pythia-160m-deduped');"
        "print(json.dumps([hub_reachable(), m.cfg.d_model, m.cfg.n_layers, m.cfg.d_vocab, m.cfg.rotary_dim,"
        " m.cfg.default_prepend_bos, m.tokenizer.bos_token_id, m.to_tokens('the cat')[0].tolist(),"
        " m.tokenizer('the cat').input_ids]))",
        standin_home,
    )
    reachable, d_model, n_layers, d_vocab, rotary_dim, prepend_bos, bos, tokens, encoded = json.loads(
        out.splitlines()[-1]
    )
    assert not reachable
    assert (d_model, n_layers, d_vocab, rotary_dim) == (768, 12, 50304, 16)  # rotary_pct 0.25 of d_head 64
    # Pythia: TransformerLens prepends no BOS (its tokenizer, loaded with add_bos_token, adds `<|endoftext|>`, id 0,
    # and TransformerLens strips it as it does for the real Pythia).
    assert prepend_bos is False and bos == 0 and bos not in tokens and encoded == [bos, *tokens]


@pytest.mark.slow
def test_missing_hub_model_still_fails_at_once_offline(standin_home: Path):
    out = _run(
        "from sae_mask_plugin.embedded.model import load_model, ModelUnavailableError\n"
        "try:\n    load_model('pythia-70m-deduped')\nexcept ModelUnavailableError as e:\n    print(e)",
        standin_home,
    )
    assert "SmolLM2-135M-Instruct" in out


def _sweep_args(overrides: dict) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


@pytest.mark.slow
def test_paper_pythia160m_sweep_runs_end_to_end_on_cpu(standin_home: Path, tmp_path: Path):
    """Training (baseline + masked), core / absorption / sparse probing / OOD, SCR/TPP status and the report,
    through the recipe's real model and dataset names."""
    sae_mask = shutil.which("sae-mask", path=str(Path(sys.executable).parent))
    assert sae_mask is not None
    out = tmp_path / "sweep"
    command = [
        sae_mask,
        "sweep",
        "paper_pythia160m",
        "--out",
        str(out),
        *_sweep_args(runner_script.SMALL_OVERRIDES),
    ]
    done = subprocess.run(
        command, env=_offline_env(standin_home), capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-4000:]

    for name in RUN_NAMES:
        sae = SAE.load_from_disk(str(out / "saes" / name), device="cpu")
        assert sae.cfg.d_in == 768 and sae.cfg.d_sae == 256
        assert sae.cfg.metadata.model_name == "pythia-160m-deduped"
        assert sae.cfg.metadata.hook_name == "blocks.8.hook_resid_post"
        runner_cfg = json.loads((out / "saes" / name / "runner_cfg.json").read_text())
        assert (
            runner_cfg["dataset_path"] == "monology/pile-uncopyrighted" and runner_cfg["context_size"] == 128
        )
    assert read_masking_metadata(out / "saes" / RUN_NAMES[0]) is None
    masking = read_masking_metadata(out / "saes" / RUN_NAMES[1])
    assert masking is not None and masking.p == 0.3 and masking.mask_token is not None

    for group in ("p0-s0", "p0.3-token-s0"):
        summary = json.loads((out / "evals" / group / "evaluation_summary.json").read_text())
        (entry,) = summary.values()
        assert {name: record["status"] for name, record in entry["evals"].items()} == dict.fromkeys(
            ["core", "absorption", "sparse_probing", "ood"], "done"
        )
        status = json.loads((out / "evals" / group / "saebench" / "scr_tpp_status.json").read_text())
        assert set(status) == {"scr", "tpp"} and all("Hugging Face hub" in text for text in status.values())
    results = json.loads((out / "report" / "results.json").read_text())
    assert sorted(run["name"] for run in results["runs"]) == RUN_NAMES
    assert "pythia-160m-deduped" in (out / "report" / "report.md").read_text()
    assert yaml.safe_load((out / "saes" / RUN_NAMES[0] / "cfg.json").read_text())["d_in"] == 768
