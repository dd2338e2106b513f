"""Resume from a SAELens checkpoint, the multi-SAE runner and the masked activation cache, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
import sae_lens.cache_activations_runner
import torch
from sae_lens import LoggingConfig, TopKTrainingSAEConfig
from sae_lens.constants import ACTIVATIONS_STORE_STATE_FILENAME, RUNNER_CFG_FILENAME
from safetensors.torch import load_file
from tiny_transformer import TINY_HOOK
from training_helpers import REPO_NAME_ID, recorded_inputs, tiny_runner_settings, tiny_sae

import sae_mask_plugin.training.runner as runner_module
from sae_mask_plugin import (
    MaskedCacheActivationsRunner,
    MaskedCacheActivationsRunnerConfig,
    MaskedLanguageModelSAERunnerConfig,
    MaskedLanguageModelSAETrainingRunner,
    MaskedMultiSAETrainingRunner,
    MaskedMultiSAETrainingRunnerConfig,
    MaskingConfig,
    make_runner_config,
    read_masking_metadata,
)
from sae_mask_plugin.evals.common import read_sae_source
from sae_mask_plugin.masking import MaskingConfigError
from sae_mask_plugin.sae_metadata import (
    CACHE_LLM_DTYPE_FILENAME,
    read_cache_llm_dtype,
    read_cache_masking,
    read_masking_record,
)
from sae_mask_plugin.training.preflight import CachedActivationsShapeError
from sae_mask_plugin.training.runner import PROGRESS_UPDATE_STEPS

MASKING = MaskingConfig(p=0.3, mask_token=REPO_NAME_ID)


@pytest.fixture(scope="module")
def token_rows() -> datasets.Dataset:
    """Pretokenized 32-token rows (BOS first, ordinary tokens after): one row is one context."""
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(100, 5000, (400, 32), generator=generator)
    rows[:, 0] = 1
    return datasets.Dataset.from_dict({"tokens": rows.tolist()})


def recording_draws(store) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Record (original tokens, mask) of every masked LLM batch the store draws."""
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []
    inner = store._draw_masked_tokens

    def draw(raise_on_epoch_end):
        tokens, masked, mask = inner(raise_on_epoch_end)
        drawn.append((tokens.clone(), mask.clone()))
        return tokens, masked, mask

    store._draw_masked_tokens = draw
    return drawn


def test_resumed_run_draws_the_masks_of_the_uninterrupted_run(tmp_path, tiny_model, token_rows):
    def runner(name, **extra):
        cfg = make_runner_config(
            "topk",
            masking=MASKING,
            sae=tiny_sae("topk"),
            **tiny_runner_settings(tmp_path / name, is_dataset_tokenized=True, **extra),
        )
        return MaskedLanguageModelSAETrainingRunner(
            cfg, override_model=tiny_model, override_dataset=token_rows
        )

    uninterrupted = runner("a", n_checkpoints=1)
    expected = recording_draws(uninterrupted.activations_store)
    uninterrupted.run()
    checkpoint = next((tmp_path / "a" / "checkpoints").glob("*/*"))
    state = load_file(str(checkpoint / ACTIVATIONS_STORE_STATE_FILENAME))
    assert "masking_rng_state" in state
    batches_before = int(state["masking_tokens_seen"]) // (4 * 32)
    assert 0 < batches_before < len(expected) - 2

    resumed = runner("b", resume_from_checkpoint=str(checkpoint))
    got = recording_draws(resumed.activations_store)
    resumed.run()
    assert len(got) >= 2
    for (tokens, mask), (expected_tokens, expected_mask) in zip(got, expected[batches_before:], strict=False):
        assert torch.equal(mask, expected_mask)
        assert torch.equal(tokens, expected_tokens)


def test_resume_from_an_unmasked_checkpoint_is_refused(tmp_path, tiny_model, token_rows):
    def runner(name, masking, **extra):
        cfg = make_runner_config(
            "topk", masking=masking, sae=tiny_sae("topk"), **tiny_runner_settings(tmp_path / name, **extra)
        )
        return MaskedLanguageModelSAETrainingRunner(
            cfg, override_model=tiny_model, override_dataset=token_rows
        )

    runner("a", None, n_checkpoints=1, is_dataset_tokenized=True).run()
    checkpoint = next((tmp_path / "a" / "checkpoints").glob("*/*"))
    with pytest.raises(ValueError, match="holds no masking state"):
        runner("b", MASKING, resume_from_checkpoint=str(checkpoint), is_dataset_tokenized=True).run()


def test_multi_sae_runner_trains_a_k_sweep_from_one_masked_pass(
    tmp_path, tiny_model, texts, monkeypatch, capsys
):
    settings = tiny_runner_settings(tmp_path)
    for key in ("model_name", "hook_name", "output_path", "checkpoint_path"):
        settings.pop(key)
    cfg = MaskedMultiSAETrainingRunnerConfig(
        saes={f"k{k}": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=k) for k in (2, 4, 8)},
        hook_names=TINY_HOOK,
        masking=MASKING,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp_path / "multi"),
        checkpoint_path=str(tmp_path / "checkpoints"),
        **settings,
    )
    single = make_runner_config(
        "topk", masking=MASKING, sae=tiny_sae("topk"), **tiny_runner_settings(tmp_path / "one")
    )
    b_dec_inits: list[tuple[str, torch.Tensor]] = []
    monkeypatch.setattr(
        runner_module,
        "init_b_dec_to_mean",
        lambda sae, batch: b_dec_inits.append((sae.cfg.d_sae, batch.clone())),
    )
    with recorded_inputs(tiny_model) as multi_fed:
        multi = MaskedMultiSAETrainingRunner(
            cfg, override_model=tiny_model, override_dataset=texts, init_b_dec="mean"
        )
        first_batch = multi.activations_store.peek_multi_hook_batch()[TINY_HOOK]
        stream = multi.activations_store.get_multi_hook_data_loader()
        assert torch.equal(
            next(stream)[TINY_HOOK], first_batch
        )  # a peeked batch stays at the head of the stream
        multi.activations_store.peek_multi_hook_batch()
        multi.run()
    assert f"{PROGRESS_UPDATE_STEPS}| k2: " in capsys.readouterr().err
    assert len(b_dec_inits) == 3 and all(batch.shape == (128, 32) for _, batch in b_dec_inits)
    with recorded_inputs(tiny_model) as single_fed:
        MaskedLanguageModelSAETrainingRunner(single, override_model=tiny_model, override_dataset=texts).run()
    # One LLM pass feeds all three SAEs: as many LLM batches as one SAE alone (buffering differs by one or so).
    assert abs(len(multi_fed) - len(single_fed)) <= 2
    assert all(bool((batch == REPO_NAME_ID).any()) for batch in multi_fed)
    for k in (2, 4, 8):
        masking = read_masking_metadata(tmp_path / "multi" / f"k{k}")
        assert masking is not None and masking.p == 0.3 and masking.mask_token == REPO_NAME_ID
        assert read_sae_source(tmp_path / "multi" / f"k{k}").llm_dtype == "float32"  # the tiny model's
    runner_cfg = json.loads((tmp_path / "multi" / RUNNER_CFG_FILENAME).read_text())
    assert runner_cfg["output_path"] == str(tmp_path / "multi")  # the real folder, not the staging one
    assert not [path for path in tmp_path.iterdir() if ".partial-" in path.name]


def test_multi_sae_runner_failing_save_leaves_no_partial_output(tmp_path, tiny_model, texts, monkeypatch):
    settings = tiny_runner_settings(tmp_path)
    for key in ("model_name", "hook_name", "output_path", "checkpoint_path"):
        settings.pop(key)
    cfg = MaskedMultiSAETrainingRunnerConfig(
        saes={f"k{k}": TopKTrainingSAEConfig(d_in=32, d_sae=64, k=k) for k in (2, 4)},
        hook_names=TINY_HOOK,
        masking=MASKING,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=str(tmp_path / "multi"),
        checkpoint_path=str(tmp_path / "checkpoints"),
        **settings,
    )
    runner = MaskedMultiSAETrainingRunner(cfg, override_model=tiny_model, override_dataset=texts)

    def fail_on_second_sae(self, path):
        if path.endswith("k4"):
            raise OSError("disk full")
        return save_inference_model(self, path)

    save_inference_model = type(runner.saes["k4"]).save_inference_model
    monkeypatch.setattr(type(runner.saes["k4"]), "save_inference_model", fail_on_second_sae)
    with pytest.raises(OSError, match="disk full"):
        runner.run()
    assert not (tmp_path / "multi").exists() or not any((tmp_path / "multi").iterdir())
    assert not [path for path in tmp_path.iterdir() if ".partial-" in path.name]


def tiny_cache_config(cache: Path, **settings: Any) -> MaskedCacheActivationsRunnerConfig:
    """A cache of the tiny model's hook activations in 32-token windows, written to `cache`."""
    return MaskedCacheActivationsRunnerConfig(
        dataset_path="",
        model_name="tiny",
        model_batch_size=4,
        hook_name=TINY_HOOK,
        d_in=32,
        context_size=32,
        new_cached_activations_path=str(cache),
        shuffle=False,
        device="cpu",
        **settings,
    )


def test_masked_cache_records_its_masking_and_trained_saes_inherit_it(
    tmp_path, tiny_model, texts, monkeypatch
):
    monkeypatch.setattr(sae_lens.cache_activations_runner, "load_model", lambda **_: tiny_model)
    cache = tmp_path / "cache"
    cfg = tiny_cache_config(cache, training_tokens=4096, buffer_size_gb=1024 * 32 * 4 / 1e9, masking=MASKING)
    with recorded_inputs(tiny_model) as fed:
        dataset = MaskedCacheActivationsRunner(cfg, override_dataset=texts).run()
    assert all(bool((batch == REPO_NAME_ID).any()) for batch in fed)
    assert not bool((torch.tensor(dataset["token_ids"]) == REPO_NAME_ID).any())  # the original ids are cached
    record = read_cache_masking(cache)
    assert (
        record is not None
        and record["p"] == 0.3
        and record["mask_token"] == REPO_NAME_ID
        and record["seed"] == 42
    )

    settings = tiny_runner_settings(tmp_path, use_cached_activations=True, cached_activations_path=str(cache))
    with pytest.raises(MaskingConfigError, match="frozen draw of the mask"):
        make_runner_config("topk", masking=MASKING, sae=tiny_sae("topk"), **settings)
    trained = make_runner_config("topk", sae=tiny_sae("topk"), **settings)
    assert isinstance(trained, MaskedLanguageModelSAERunnerConfig)
    assert read_cache_llm_dtype(cache) == "float32"  # the tiny model's dtype
    (cache / CACHE_LLM_DTYPE_FILENAME).write_text(json.dumps({"llm_dtype": "bfloat16"}))  # as on a bf16 CPU
    MaskedLanguageModelSAETrainingRunner(trained, override_model=tiny_model, override_dataset=texts).run()
    assert read_masking_record(tmp_path / "sae") == record
    assert read_sae_source(tmp_path / "sae").llm_dtype == "bfloat16"  # the cache's, not the model's


def test_a_cache_of_sliced_windows_needs_its_own_window_length(tmp_path, tiny_model, texts, monkeypatch):
    """A cache built with `seqpos_slice=(2, None)` holds 30-position windows of a 32-token context: a run with
    context 32 is refused before any training, one with context 30 and no slice trains on it."""
    monkeypatch.setattr(sae_lens.cache_activations_runner, "load_model", lambda **_: tiny_model)
    cache = tmp_path / "cache"
    cfg = tiny_cache_config(
        cache, training_tokens=30 * 64, buffer_size_gb=30 * 64 * 32 * 4 / 1e9, seqpos_slice=(2, None)
    )
    MaskedCacheActivationsRunner(cfg, override_dataset=texts).run()
    settings = tiny_runner_settings(tmp_path, use_cached_activations=True, cached_activations_path=str(cache))
    wrong = make_runner_config("topk", sae=tiny_sae("topk"), **{**settings, "seqpos_slice": (None,)})
    with pytest.raises(CachedActivationsShapeError, match=r"windows of 30 positions .* set context_size=30"):
        MaskedLanguageModelSAETrainingRunner(wrong, override_model=tiny_model, override_dataset=texts)
    right = make_runner_config(
        "topk", sae=tiny_sae("topk"), **{**settings, "context_size": 30, "seqpos_slice": (None,)}
    )
    MaskedLanguageModelSAETrainingRunner(right, override_model=tiny_model, override_dataset=texts).run()
    assert (tmp_path / "sae" / "cfg.json").is_file()
