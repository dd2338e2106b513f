"""Runs with a bfloat16 LLM on the tiny model: the dtype reaches the SAE's metadata and the evals' input checks, and
the bfloat16 pass stays close to the float32 one."""

from __future__ import annotations

import json

import pytest
import torch
from sae_lens import SAE
from tiny_transformer import TINY_HOOK, build_tiny_model
from training_helpers import tiny_runner_settings, tiny_sae

from sae_mask_plugin import MaskedLanguageModelSAETrainingRunner, MaskingConfig, make_runner_config
from sae_mask_plugin.calibration import CALIBRATION_METADATA_KEY
from sae_mask_plugin.evals.common import read_sae_source
from sae_mask_plugin.evals.dtype_fidelity import mean_next_token_loss, relative_error
from sae_mask_plugin.llm_dtype import LlmDtypeError, cpu_model, recorded_llm_dtype
from sae_mask_plugin.report.records import read_sae_record
from sae_mask_plugin.sae_metadata import read_masking_metadata


@pytest.fixture(scope="module")
def bf16_tiny_model(tokenizer):
    return build_tiny_model(tokenizer).to(torch.bfloat16)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_llm_dtype_is_recorded_with_the_sae_and_guards_its_evals(
    dtype, tmp_path, tiny_model, bf16_tiny_model, texts
):
    model = bf16_tiny_model if dtype == "bfloat16" else tiny_model
    cfg = make_runner_config(
        "batchtopk",
        masking=MaskingConfig(p=0.3, mask_token="<repo_name>"),
        sae=tiny_sae("batchtopk"),
        llm_dtype=dtype,
        calibrate_threshold=True,
        calibration_tokens=512,
        **tiny_runner_settings(tmp_path),
    )
    MaskedLanguageModelSAETrainingRunner(cfg, override_model=model, override_dataset=texts).run()

    saved = json.loads((tmp_path / "sae" / "cfg.json").read_text())["metadata"]
    assert recorded_llm_dtype(saved) == dtype
    assert read_sae_record(tmp_path / "sae").cpu_model == saved["cpu_model"] == cpu_model()
    assert saved[CALIBRATION_METADATA_KEY]["clean_l0_calibrated"] == pytest.approx(
        4, rel=0.05
    )  # calibrated in `dtype`
    sae = SAE.load_from_disk(str(tmp_path / "sae"))  # stock SAELens still loads it
    assert sae.cfg.dtype == "float32" and sae.cfg.metadata.llm_dtype == dtype
    assert read_masking_metadata(tmp_path / "sae") is not None
    source = read_sae_source(tmp_path / "sae")
    assert source.eval_llm_dtype(None) == source.eval_llm_dtype(dtype) == dtype
    other = "float32" if dtype == "bfloat16" else "bfloat16"
    with pytest.raises(LlmDtypeError, match=f"trained on {dtype}"):
        source.eval_llm_dtype(other)


def test_bfloat16_activations_and_loss_stay_close_to_float32(tiny_model, bf16_tiny_model, texts):
    tokens = tiny_model.to_tokens(list(texts[:8]["text"]), padding_side="right")[:, :32]
    activations = {}
    for name, model in {"float32": tiny_model, "bfloat16": bf16_tiny_model}.items():
        _, cache = model.run_with_cache(tokens, names_filter=[TINY_HOOK])
        activations[name] = cache[TINY_HOOK].flatten(0, 1).float()
    error = relative_error(activations["float32"], activations["bfloat16"])
    assert 0 < error["overall"] < 0.02 and error["median"] <= error["p99"]
    assert relative_error(activations["float32"], activations["float32"])["overall"] == 0
    loss32, loss16 = mean_next_token_loss(tiny_model, tokens), mean_next_token_loss(bf16_tiny_model, tokens)
    assert loss16 == pytest.approx(loss32, rel=0.01) and loss16 != loss32
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(activations["float32"], activations["bfloat16"][:-1])
