"""Threshold calibration on tiny SAEs: exact L0 on the calibration tokens, idempotence, stock loading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sae_lens import SAE
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAEConfig
from sae_lens.saes.matryoshka_batchtopk_sae import MatryoshkaBatchTopKTrainingSAEConfig
from sae_lens.saes.sae import TrainingSAE
from sae_lens.saes.topk_sae import TopKTrainingSAEConfig

from sae_mask_plugin.calibration import (
    CALIBRATION_METADATA_KEY,
    CalibrationError,
    calibrate_saved_sae,
    threshold_for_l0,
)
from sae_mask_plugin.calibration.threshold import ENCODE_BATCH_TOKENS, fvu_and_l0, mean_l0

D_IN, D_SAE, K = 16, 64, 4


def save_tiny_sae(config, path: Path, learned_threshold: float) -> Path:
    torch.manual_seed(0)
    sae = TrainingSAE.from_dict(config.to_dict())
    sae.b_enc.data.normal_(0, 0.1)
    sae.topk_threshold.fill_(learned_threshold)
    sae.save_inference_model(str(path))
    return path


@pytest.fixture(params=["batchtopk", "matryoshka_batchtopk"])
def sae_dir(request, tmp_path) -> Path:
    if request.param == "batchtopk":
        config = BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    else:
        config = MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=D_IN, d_sae=D_SAE, k=K, matryoshka_widths=[16, D_SAE]
        )
    return save_tiny_sae(config, tmp_path / request.param, learned_threshold=0.05)


def activations(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed))


def test_calibrated_sae_fires_k_latents_on_calibration_and_held_out_tokens(sae_dir):
    calibration, held_out = activations(4_000, seed=1), activations(4_000, seed=2)
    learned_l0 = mean_l0(SAE.load_from_disk(str(sae_dir)), held_out)
    result = calibrate_saved_sae(sae_dir, calibration)
    sae = SAE.load_from_disk(str(sae_dir))
    assert abs(learned_l0 - K) > 1  # the learned threshold was far from k: calibration had work to do
    assert mean_l0(sae, calibration) == pytest.approx(K, abs=1e-3)
    assert mean_l0(sae, held_out) == pytest.approx(K, rel=0.03)
    assert result.learned_threshold == pytest.approx(0.05)
    assert result.clean_l0_calibrated == pytest.approx(K, abs=1e-3)
    assert float(sae.threshold[0].detach()) == pytest.approx(result.calibrated_threshold)
    record = json.loads((sae_dir / "cfg.json").read_text())["metadata"][CALIBRATION_METADATA_KEY]
    assert record["calibration_tokens"] == 4_000 and record["target_l0"] == K


def test_recalibrating_is_idempotent_and_keeps_the_learned_threshold(sae_dir):
    calibration = activations(2_000, seed=3)
    first = calibrate_saved_sae(sae_dir, calibration)
    weights = (sae_dir / "sae_weights.safetensors").read_bytes()
    second = calibrate_saved_sae(sae_dir, calibration)
    assert second == first
    assert (sae_dir / "sae_weights.safetensors").read_bytes() == weights


def test_target_l0_overrides_k(sae_dir):
    calibration = activations(2_000, seed=4)
    calibrate_saved_sae(sae_dir, calibration, target_l0=10)
    assert mean_l0(SAE.load_from_disk(str(sae_dir)), calibration) == pytest.approx(10, abs=1e-3)


def test_threshold_matches_a_sort_of_all_pre_activations(sae_dir):
    sae = SAE.load_from_disk(str(sae_dir))
    x = activations(300, seed=5)
    pre = (sae.process_sae_in(x) @ sae.W_enc + sae.b_enc).flatten().sort(descending=True).values
    n = 3 * 300
    assert threshold_for_l0(sae, x, 3) == pytest.approx(float(pre[n - 1] + pre[n]) / 2, abs=1e-6)


def test_fvu_and_l0_by_hand(sae_dir):
    """Over several encode batches: FVU is 1 - R² of the reconstruction; a zero decoder leaves Σx² / Σ(x - x̄)²."""
    sae = SAE.load_from_disk(str(sae_dir))
    x = activations(ENCODE_BATCH_TOKENS + 500, seed=7) + 0.5
    with torch.no_grad():
        features = sae.encode(x)
        reconstruction = sae.decode(features)
    centred = (x - x.mean(0)).pow(2).sum()
    fvu, l0 = fvu_and_l0(sae, x)
    assert fvu == pytest.approx(float((x - reconstruction).pow(2).sum() / centred), rel=1e-5)
    assert l0 == pytest.approx(float((features != 0).sum(-1).float().mean()), rel=1e-6)
    with torch.no_grad():
        sae.W_dec.zero_()
        sae.b_dec.zero_()
    assert fvu_and_l0(sae, x)[0] == pytest.approx(float(x.pow(2).sum() / centred), rel=1e-5)


def test_stock_saelens_loads_a_calibrated_sae_without_the_plugin(sae_dir):
    calibrate_saved_sae(sae_dir, activations(1_000, seed=6))
    code = (
        "import sys; from sae_lens import SAE; sae = SAE.load_from_disk(sys.argv[1]); "
        "assert 'sae_mask_plugin' not in sys.modules; print(float(sae.threshold[0]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(sae_dir)], capture_output=True, text=True, check=True
    )
    assert float(out.stdout) > 0


def test_refuses_saes_without_one_global_threshold(tmp_path):
    topk = save_tiny_sae_plain(TopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), tmp_path / "topk")
    with pytest.raises(CalibrationError, match="global threshold"):
        calibrate_saved_sae(topk, activations(100, seed=7))
    with pytest.raises(CalibrationError, match="not a saved SAE"):
        calibrate_saved_sae(tmp_path / "missing", activations(100, seed=7))


def save_tiny_sae_plain(config, path: Path) -> Path:
    TrainingSAE.from_dict(config.to_dict()).save_inference_model(str(path))
    return path
