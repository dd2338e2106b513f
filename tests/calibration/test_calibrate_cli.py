"""`sae-mask calibrate`: bad input answers before any model load; a real run calibrates in place."""

from __future__ import annotations

import json

import pytest
import torch
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAEConfig
from sae_lens.saes.sae import TrainingSAE
from sae_lens.saes.topk_sae import TopKTrainingSAEConfig

from sae_mask_plugin.calibration import CALIBRATION_METADATA_KEY
from sae_mask_plugin.calibration.cli import main
from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME


def saved_sae(path, config, hook_name="blocks.1.hook_resid_post", seqpos_slice=(None,)):
    torch.manual_seed(0)
    sae = TrainingSAE.from_dict(config.to_dict())
    sae.cfg.metadata.model_name = EMBEDDED_MODEL_NAME
    sae.cfg.metadata.hook_name = hook_name
    sae.cfg.metadata.seqpos_slice = seqpos_slice
    sae.save_inference_model(str(path))
    return path


def test_bad_input_is_refused_before_any_model_load(tmp_path, capsys, monkeypatch):
    import sae_mask_plugin.embedded.model as model_module

    monkeypatch.setattr(model_module, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    topk = saved_sae(tmp_path / "topk", TopKTrainingSAEConfig(d_in=576, d_sae=64, k=4))
    batchtopk = saved_sae(tmp_path / "bt", BatchTopKTrainingSAEConfig(d_in=576, d_sae=64, k=4))
    for argv, message in [
        (["--sae", str(tmp_path / "missing")], "not a saved SAE"),
        (["--sae", str(batchtopk), "--sae", str(topk)], "global threshold"),
        (["--sae", str(batchtopk), "--l0", "100"], "target L0 must be in"),
        (["--sae", str(batchtopk), "--tokens", "0"], "--tokens must be"),
    ]:
        assert main(argv) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_calibrate_command_sets_l0_on_smollm2_in_place(tmp_path, capsys):
    """Calibration reads the window positions the SAE trained on (its `seqpos_slice`)."""
    sae_dir = saved_sae(
        tmp_path / "bt", BatchTopKTrainingSAEConfig(d_in=576, d_sae=256, k=8), seqpos_slice=(2, None)
    )
    assert main(["--sae", str(sae_dir), "--tokens", "2048", "--context-size", "64"]) == 0
    record = json.loads((sae_dir / "cfg.json").read_text())["metadata"][CALIBRATION_METADATA_KEY]
    assert record["calibration_tokens"] == 2048 and record["context_size"] == 64
    assert record["seqpos_slice"] == [2, None]
    assert record["clean_l0_calibrated"] == pytest.approx(8, abs=0.01)
    assert "clean L0" in capsys.readouterr().out
    assert not list(tmp_path.glob(".bt.partial-*"))
