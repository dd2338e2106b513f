"""The runners' `calibrate_threshold` option: baseline and masked SAEs leave training at L0 = k on clean text."""

from __future__ import annotations

import json

import pytest
import torch
from sae_lens import SAE, LoggingConfig
from sae_lens.saes.matryoshka_batchtopk_sae import MatryoshkaBatchTopKTrainingSAEConfig
from sae_lens.saes.topk_sae import TopKTrainingSAEConfig
from tiny_transformer import TINY_HOOK
from training_helpers import REPO_NAME_ID, tiny_runner_settings, tiny_sae

from sae_mask_plugin import (
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    MaskingConfig,
    make_runner_config,
)
from sae_mask_plugin.calibration import CALIBRATION_METADATA_KEY, CalibrationError
from sae_mask_plugin.calibration.threshold import mean_l0
from sae_mask_plugin.clean_activations import clean_token_activations, packed_windows, special_token_ids
from sae_mask_plugin.embedded.corpus import load_calibration_texts

CALIBRATION_TOKENS = 8_192
K = 4


@pytest.fixture(scope="module")
def held_out_activations(tiny_model):
    """Clean text the calibration never reads (the second half of the calibration split, far past the tokens
    calibration uses) at the tiny model's hook: [4096, 32]."""
    texts = load_calibration_texts(show_progress=False)
    return clean_token_activations(
        tiny_model, TINY_HOOK, texts[len(texts) // 2 :], 4_096, 32, show_progress=False
    )


def test_clean_activations_keep_the_window_positions_training_keeps(tiny_model):
    """With `seqpos_slice=(2, None)` (the embedded default's), BOS and the first text token of every window are
    left out, as SAELens leaves them out of training."""
    texts = load_calibration_texts(show_progress=False)[:200]
    windows = packed_windows(tiny_model, texts, 32, max_windows=4)
    _, cache = tiny_model.run_with_cache(windows, names_filter=[TINY_HOOK])
    keep = ~torch.isin(windows, torch.tensor(sorted(special_token_ids(tiny_model))))
    keep[:, :2] = False
    expected = cache[TINY_HOOK][keep]
    kept = clean_token_activations(
        tiny_model, TINY_HOOK, texts, len(expected), 32, seqpos_slice=(2, None), show_progress=False
    )
    torch.testing.assert_close(kept, expected)
    everything = clean_token_activations(tiny_model, TINY_HOOK, texts, len(expected), 32, show_progress=False)
    assert not torch.equal(everything, kept)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_single_runner_calibrates_baseline_and_masked_to_k(
    p, tmp_path, tiny_model, texts, held_out_activations
):
    masking = MaskingConfig(p=p, mask_token=REPO_NAME_ID, max_norm_ratio=None) if p else None
    cfg = make_runner_config(
        "batchtopk",
        masking=masking,
        sae=tiny_sae("batchtopk"),
        calibrate_threshold=True,
        calibration_tokens=CALIBRATION_TOKENS,
        **tiny_runner_settings(tmp_path),
    )
    MaskedLanguageModelSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts).run()
    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    record = sae.cfg.metadata[CALIBRATION_METADATA_KEY]
    assert record["calibration_tokens"] == CALIBRATION_TOKENS and record["target_l0"] == K
    assert record["seqpos_slice"] == [2, None]  # the positions the run trained on
    assert record["clean_l0_calibrated"] == pytest.approx(K, abs=0.01)
    assert abs(record["clean_l0_learned"] - K) > 0.5  # 2 k tokens of training leave the learned threshold off
    # A random 2-layer model's activations vary much from text to text, so unseen text lands near k only roughly
    # here; the acceptance test on SmolLM2 checks +-3 % (test_smollm2_training).
    assert mean_l0(sae, held_out_activations) == pytest.approx(K, rel=0.25)
    assert not list(tmp_path.glob(".sae.partial-*"))


def test_multi_runner_calibrates_every_batchtopk_sae_at_its_own_k_and_records_the_others(
    tmp_path, tiny_model, texts, held_out_activations
):
    settings = tiny_runner_settings(tmp_path)
    del settings["model_name"], settings["hook_name"], settings["output_path"]
    cfg = MaskedMultiSAETrainingRunnerConfig(
        saes={
            **{
                f"k{k}": MatryoshkaBatchTopKTrainingSAEConfig(
                    d_in=32, d_sae=64, k=k, matryoshka_widths=[16, 64]
                )
                for k in (2, 8)
            },
            "topk": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=4),
        },
        model_name="tiny",
        hook_names=TINY_HOOK,
        masking=MaskingConfig(p=0.3, mask_token=REPO_NAME_ID, max_norm_ratio=None),
        calibrate_threshold=True,
        calibration_tokens=CALIBRATION_TOKENS,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp_path / "multi"),
        **settings,
    )
    MaskedMultiSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts).run()
    for k in (2, 8):
        sae = SAE.load_from_disk(str(tmp_path / "multi" / f"k{k}"))
        assert sae.cfg.metadata[CALIBRATION_METADATA_KEY]["clean_l0_calibrated"] == pytest.approx(k, abs=0.01)
        assert mean_l0(sae, held_out_activations) == pytest.approx(k, rel=0.25)
    topk_record = SAE.load_from_disk(str(tmp_path / "multi" / "topk")).cfg.metadata[CALIBRATION_METADATA_KEY]
    assert "by construction" in topk_record["not_calibrated"]
    runner_cfg = json.loads((tmp_path / "multi" / "runner_cfg.json").read_text())
    assert runner_cfg["calibrate_threshold"] is True


def test_calibration_is_off_by_default_and_refused_for_architectures_without_a_global_threshold(tmp_path):
    cfg = make_runner_config("batchtopk", sae=tiny_sae("batchtopk"), **tiny_runner_settings(tmp_path))
    assert cfg.calibrate_threshold is False
    with pytest.raises(CalibrationError, match="global threshold"):
        make_runner_config(
            "topk", sae=tiny_sae("topk"), calibrate_threshold=True, **tiny_runner_settings(tmp_path)
        )
