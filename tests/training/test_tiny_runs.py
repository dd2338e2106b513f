"""Masked training with every SAELens training architecture, on a tiny model built in the test."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from sae_lens import SAE
from tiny_transformer import TINY_HOOK
from training_helpers import REPO_NAME_ID, recorded_inputs, tiny_runner_settings, tiny_sae

from sae_mask_plugin import (
    MaskedLanguageModelSAERunnerConfig,
    MaskedLanguageModelSAETrainingRunner,
    MaskingConfig,
    make_runner_config,
    read_masking_metadata,
)
from sae_mask_plugin.sae_metadata import read_masking_record
from sae_mask_plugin.training.runner import PROGRESS_UPDATE_STEPS, progress_interval

ARCHITECTURES = ["standard", "topk", "batchtopk", "matryoshka_batchtopk", "jumprelu", "gated"]


def runner_for(architecture, tmp_path, tiny_model, texts, masking, **overrides):
    cfg = make_runner_config(
        architecture,
        masking=masking,
        sae=tiny_sae(architecture),
        **tiny_runner_settings(tmp_path, **overrides),
    )
    return MaskedLanguageModelSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_trains_masked_and_saves_a_stock_sae(architecture, tmp_path, tiny_model, texts):
    masking = MaskingConfig(p=0.3, mask_token="<repo_name>")
    runner = runner_for(architecture, tmp_path, tiny_model, texts, masking)
    with recorded_inputs(tiny_model) as fed:
        runner.run()
    fed_tokens = torch.cat([batch.flatten() for batch in fed])
    assert 0.2 < float((fed_tokens == REPO_NAME_ID).float().mean()) < 0.35

    sae = SAE.load_from_disk(str(tmp_path / "sae"))
    assert sae.cfg.d_in == 32 and sae.cfg.d_sae == 64
    loaded = read_masking_metadata(tmp_path / "sae")
    assert loaded is not None and loaded.p == 0.3 and loaded.mask_token == REPO_NAME_ID
    record = read_masking_record(sae)
    assert record is not None and record["mask_token_string"] == "<repo_name>" and record["seed"] == 42
    assert record["first_batch_norm_ratio"] == pytest.approx(runner.activations_store.first_batch_norm_ratio)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sae.partial")]


def test_progress_bar_moves_before_the_end_of_a_short_run(tmp_path, tiny_model, texts, capsys):
    runner = runner_for("topk", tmp_path, tiny_model, texts, MaskingConfig(p=0.3, mask_token="<repo_name>"))
    runner.run()  # 16 steps: SAELens alone would first move its bar at step 100
    assert f"{PROGRESS_UPDATE_STEPS}| " in capsys.readouterr().err


def test_the_progress_bar_of_a_run_of_a_few_steps_reaches_its_end(tmp_path, tiny_model, texts, capsys):
    assert [progress_interval(steps) for steps in (5, 16, 40, 98, 1000)] == [1, 1, 4, 9, 10]
    runner = runner_for("topk", tmp_path, tiny_model, texts, MaskingConfig(p=0.0), training_tokens=5 * 128)
    runner.run()  # 5 steps: a bar moved every 10 steps would stay at 0
    assert "640/640" in capsys.readouterr().err


def test_baseline_and_masked_share_data_order_and_init(tmp_path, tiny_model, texts):
    runs = {}
    for name, masking in {"baseline": None, "masked": MaskingConfig(p=0.3, mask_token=REPO_NAME_ID)}.items():
        runner = runner_for("topk", tmp_path / name, tiny_model, texts, masking, seed=7)
        initial = {key: value.clone() for key, value in runner.sae.state_dict().items()}
        store = runner.activations_store
        drawn: list[torch.Tensor] = []
        get_batch_tokens = store.get_batch_tokens

        def recording(*args, _inner=get_batch_tokens, _drawn=drawn, **kwargs):
            tokens = _inner(*args, **kwargs)
            _drawn.append(tokens.clone())
            return tokens

        store.get_batch_tokens = recording
        runner.run()
        runs[name] = (initial, drawn)
    (base_init, base_tokens), (masked_init, masked_tokens) = runs["baseline"], runs["masked"]
    assert base_init.keys() == masked_init.keys()
    assert all(torch.equal(base_init[key], masked_init[key]) for key in base_init)
    assert len(base_tokens) == len(masked_tokens) > 1
    assert all(torch.equal(a, b) for a, b in zip(base_tokens, masked_tokens, strict=True))
    assert read_masking_metadata(tmp_path / "baseline" / "sae") is None
    assert "masking" not in json.loads((tmp_path / "baseline" / "sae" / "cfg.json").read_text())["metadata"]


@pytest.mark.parametrize("loss_positions", ["all", "unmasked", "masked"])
def test_loss_positions_select_rows_and_special_mask_token_survives_the_filter(
    loss_positions, tmp_path, tiny_model, texts
):
    """The mask token <|im_end|> (id 2, EOS and PAD) is in exclude_special_tokens; the filter reads the original ids, so
    masked positions are dropped only when loss_positions says so (DESIGN trap 2)."""
    masking = MaskingConfig(p=0.4, mask_token=2, loss_positions=loss_positions, max_norm_ratio=None)
    stores = [
        runner_for("topk", tmp_path / str(i), tiny_model, texts, masking).activations_store for i in range(2)
    ]
    assert stores[0].exclude_special_tokens is not None and 2 in stores[0].exclude_special_tokens.tolist()
    _, token_ids, mask = stores[0].get_masked_llm_batch()
    rows = stores[1].get_filtered_llm_batch()
    not_special = ~torch.isin(token_ids, stores[0].exclude_special_tokens)
    expected = {"all": not_special, "unmasked": not_special & ~mask, "masked": not_special & mask}[
        loss_positions
    ]
    assert bool(mask.any()) and rows.shape[0] == int(expected.sum())


def test_in_training_evals_read_clean_text(tmp_path, tiny_model, texts):
    runner = runner_for("topk", tmp_path, tiny_model, texts, MaskingConfig(p=0.5, mask_token=REPO_NAME_ID))
    store = runner.activations_store
    runner._set_sae_metadata()  # as run() does before training: the evals read the hook name from it
    with recorded_inputs(tiny_model) as fed:
        next(store)
        n_training = len(fed)
        runner.evaluator(runner.sae, store, runner_activation_scaler())
    training, evals = fed[:n_training], fed[n_training:]
    assert all(bool((batch == REPO_NAME_ID).any()) for batch in training)
    assert evals and not any(bool((batch == REPO_NAME_ID).any()) for batch in evals)


def runner_activation_scaler():
    from sae_lens.training.activation_scaler import ActivationScaler

    return ActivationScaler()


def test_first_batch_norm_check_stops_and_names_better_tokens(tmp_path, tiny_model, texts):
    loud = type(tiny_model)(tiny_model.cfg, tokenizer=tiny_model.tokenizer)
    loud.load_state_dict(tiny_model.state_dict())
    with torch.no_grad():
        loud.embed.W_E[REPO_NAME_ID] *= 500.0  # an attention-sink-like outlier at the masked positions
    cfg = make_runner_config(
        "topk",
        masking=MaskingConfig(p=0.3, mask_token="<repo_name>"),
        sae=tiny_sae("topk"),
        **tiny_runner_settings(tmp_path),
    )
    runner = MaskedLanguageModelSAETrainingRunner(cfg, override_model=loud, override_dataset=texts)
    from sae_mask_plugin.training import MaskTokenNormError

    with pytest.raises(MaskTokenNormError, match=r"'<repo_name>'|id 3") as error:
        runner.run()
    message = str(error.value)
    assert (
        "threshold masking.max_norm_ratio = 2.0" in message and "Better mask tokens on this batch:" in message
    )
    assert not (tmp_path / "sae").exists()


def test_a_p0_masked_run_trains_the_same_weights_as_stock_saelens(tmp_path, tiny_model, texts):
    """The drop-in promise: with masking off (and calibration off, its default) the masked runner trains exactly
    what SAELens's own runner trains from the same seed, data and settings."""
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAEConfig

    settings = tiny_runner_settings(tmp_path / "stock")
    stock_cfg = LanguageModelSAERunnerConfig(
        sae=BatchTopKTrainingSAEConfig(**tiny_sae("batchtopk")),
        logger=LoggingConfig(log_to_wandb=False),
        **settings,
    )
    torch.manual_seed(stock_cfg.seed)  # SAELens draws the SAE's initial weights from the global generator
    LanguageModelSAETrainingRunner(stock_cfg, override_model=tiny_model, override_dataset=texts).run()
    masked_cfg = MaskedLanguageModelSAERunnerConfig(
        sae=BatchTopKTrainingSAEConfig(**tiny_sae("batchtopk")),
        logger=LoggingConfig(log_to_wandb=False),
        masking=MaskingConfig(p=0.0),
        **tiny_runner_settings(tmp_path / "masked"),
    )
    MaskedLanguageModelSAETrainingRunner(masked_cfg, override_model=tiny_model, override_dataset=texts).run()
    stock = SAE.load_from_disk(str(tmp_path / "stock" / "sae")).state_dict()
    masked = SAE.load_from_disk(str(tmp_path / "masked" / "sae")).state_dict()
    assert stock.keys() == masked.keys()
    assert all(torch.equal(stock[key], masked[key]) for key in stock)


def test_a_p0_masked_multi_sae_run_trains_the_same_weights_as_stock_saelens(tmp_path, tiny_model, texts):
    """The drop-in promise for the multi-SAE runner, over two hooks of different widths: its mixing buffer shuffles
    the rows packed over hooks exactly as SAELens's multi-hook buffer does."""
    from sae_lens import LoggingConfig, MultiSAETrainingRunner, MultiSAETrainingRunnerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAEConfig

    from sae_mask_plugin import MaskedMultiSAETrainingRunner, MaskedMultiSAETrainingRunnerConfig

    def settings(name: str) -> dict[str, Any]:
        shared = tiny_runner_settings(tmp_path / name, output_path=str(tmp_path / name / "multi"))
        for key in ("model_name", "hook_name", "checkpoint_path"):
            shared.pop(key)
        return {
            "saes": {
                "resid": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=4),
                "mlp": TopKTrainingSAEConfig(d_in=64, d_sae=64, k=4),
            },
            "hook_names": {"resid": TINY_HOOK, "mlp": "blocks.1.mlp.hook_post"},
            "logger": LoggingConfig(log_to_wandb=False),
            **shared,
        }

    torch.manual_seed(
        42
    )  # the masked runner seeds the SAEs' initialisation with cfg.seed (SAELens's default 42)
    MultiSAETrainingRunner(
        MultiSAETrainingRunnerConfig(**settings("stock")), override_model=tiny_model, override_dataset=texts
    ).run()
    MaskedMultiSAETrainingRunner(
        MaskedMultiSAETrainingRunnerConfig(masking=MaskingConfig(p=0.0), **settings("masked")),
        override_model=tiny_model,
        override_dataset=texts,
    ).run()
    for name in ("resid", "mlp"):
        stock = SAE.load_from_disk(str(tmp_path / "stock" / "multi" / name)).state_dict()
        masked = SAE.load_from_disk(str(tmp_path / "masked" / "multi" / name)).state_dict()
        assert stock.keys() == masked.keys()
        assert all(torch.equal(stock[key], masked[key]) for key in stock)
