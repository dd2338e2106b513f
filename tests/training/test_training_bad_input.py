"""Bad input fails with one clear message before any model is loaded, and leaves nothing in the output folder."""

from __future__ import annotations

import warnings

import pytest
import sae_lens.llm_sae_training_runner
from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAEConfig

from sae_mask_plugin import MaskedLanguageModelSAETrainingRunner, MaskingConfig, make_runner_config
from sae_mask_plugin.masking import MaskingConfigError
from sae_mask_plugin.training import HookNotFoundError, MaskedMultiSAETrainingRunnerConfig
from sae_mask_plugin.training.cli import main as train_main
from sae_mask_plugin.training.config import (
    AuxKWindowWarning,
    MixingBufferError,
    MixingBufferWarning,
    mixing_buffer_notice,
)
from sae_mask_plugin.training.defaults import short_run_dead_feature_window


@pytest.fixture(autouse=True)
def no_model_load(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(sae_lens.llm_sae_training_runner, "load_model", refuse)


@pytest.mark.parametrize(
    ("masking", "runner", "error", "message"),
    [
        ({"mask_token": "hello world"}, {}, MaskingConfigError, r"'hello world' is not a single token"),
        ({"mask_token": 60_000}, {}, MaskingConfigError, r"mask token id 60000 is not in the vocabulary"),
        (
            {},
            {"hook_name": "blocks.99.hook_resid_post"},
            HookNotFoundError,
            r"not a hook of model .*did you mean",
        ),
        ({}, {"hook_name": "blocks.12.hook_resid"}, HookNotFoundError, r"blocks.12.hook_resid_p(re|ost)"),
    ],
)
def test_runner_checks_before_loading_the_model(masking, runner, error, message, tmp_path):
    cfg = make_runner_config(
        masking=MaskingConfig(p=0.3, **masking), output_path=str(tmp_path / "out"), **runner
    )
    with pytest.raises(error, match=message):
        MaskedLanguageModelSAETrainingRunner(cfg)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: make_runner_config("masked_topk"),
            ValueError,
            r"unknown architecture 'masked_topk'; SAELens has: ",
        ),
        (
            lambda: make_runner_config("standard", sae={"k": 4}),
            ValueError,
            r"standard SAE configs have no field",
        ),
        (
            lambda: make_runner_config(masking=MaskingConfig(p=0.3), use_cached_activations=True),
            MaskingConfigError,
            r"frozen draw of the mask",
        ),
        (
            lambda: MaskedLanguageModelSAETrainingRunner(
                make_runner_config(sae={"normalize_activations": "expected_average_only_in"}),
                init_b_dec="mean",
            ),
            ValueError,
            r"init_b_dec='mean' .* needs sae.normalize_activations='none'",
        ),
        (
            lambda: make_runner_config(
                context_size=128, seqpos_slice=(2, None), n_batches_in_buffer=16, train_batch_size_tokens=2048
            ),
            MixingBufferError,
            r"16 x 126 = 2016 activations, fewer than train_batch_size_tokens = 2048: set n_batches_in_buffer >= 17",
        ),
        (
            lambda: MaskedMultiSAETrainingRunnerConfig(
                saes={"a": BatchTopKTrainingSAEConfig(d_in=576, d_sae=64, k=4)},
                hook_names={"a": "blocks.12.hook_resid_post"},
                context_size=64,
                n_batches_in_buffer=1,
                train_batch_size_tokens=128,
            ),
            MixingBufferError,
            r"1 x 64 = 64 activations",
        ),
    ],
)
def test_configs_refuse_bad_settings(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_mixing_buffer_of_exactly_one_batch_is_accepted():
    make_runner_config(
        context_size=128, seqpos_slice=(2, None), n_batches_in_buffer=17, train_batch_size_tokens=2142
    )


def test_a_buffer_of_few_batches_is_named_with_the_setting_that_mixes_enough() -> None:
    arm_first_run = {"context_size": 128, "seqpos_slice": (2, None), "train_batch_size_tokens": 2048}
    notice = mixing_buffer_notice(make_runner_config(n_batches_in_buffer=32, **arm_first_run))
    assert notice is not None
    assert "4,032 activations, 2.0 training batches of 2,048" in notice
    assert "Set n_batches_in_buffer >= 131" in notice
    assert mixing_buffer_notice(make_runner_config(n_batches_in_buffer=131, **arm_first_run)) is None
    assert mixing_buffer_notice(make_runner_config(n_batches_in_buffer=130, **arm_first_run)) is not None


def test_the_runner_warns_of_a_poorly_mixed_buffer_before_the_model_loads() -> None:
    cfg = make_runner_config(n_batches_in_buffer=32)
    with (
        pytest.warns(MixingBufferWarning, match="Set n_batches_in_buffer >= 131"),
        pytest.raises(AssertionError, match="the model was loaded"),
    ):
        MaskedLanguageModelSAETrainingRunner(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MixingBufferWarning)
        with pytest.raises(AssertionError, match="the model was loaded"):
            MaskedLanguageModelSAETrainingRunner(make_runner_config())  # the short-run defaults mix enough


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--p", "1.5"], "masking.p must be a probability in [0, 1), got 1.5"),
        (["--strategy", "bert"], "invalid choice: 'bert'"),
        (["--schedule", "cosine"], "invalid choice: 'cosine'"),
        (["--span_mean_length", "0.5"], "masking.span_mean_length must be >= 1"),
        (["--mask_token", "hello world"], "'hello world' is not a single token"),
        (["--hook_name", "blocks.99.hook_resid_post"], "is not a hook of model"),
        (["--architecture", "masked_topk"], "invalid choice: 'masked_topk'"),
        (["--n_batches_in_buffer", "1"], "set n_batches_in_buffer >= "),
    ],
)
def test_train_command_reports_bad_input(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main([*argv, "--output_path", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_run_too_short_for_its_dead_latent_window_warns_that_auxk_stays_off() -> None:
    with pytest.warns(
        AuxKWindowWarning, match=r"97 steps of 2,048\): AuxK \(matryoshka_batchtopk\) never revives"
    ):
        make_runner_config(dead_feature_window=1000)  # 200k tokens against SAELens's 1,000-step window
    with warnings.catch_warnings():
        warnings.simplefilter("error", AuxKWindowWarning)
        make_runner_config()  # the short-run default window
        make_runner_config(dead_feature_window=9)
        make_runner_config("standard", dead_feature_window=1000)  # no AuxK to switch off


@pytest.mark.parametrize(
    ("tokens", "batch", "window"),
    [
        (200_000, 2048, 9),
        (100_000, 2048, 4),
        (4096, 2048, 1),
        (1_000_000, 2048, 48),
        (100_000_000, 4096, 1000),
    ],
)
def test_short_runs_default_to_a_window_of_a_tenth_of_their_steps(tokens, batch, window) -> None:
    assert short_run_dead_feature_window(tokens, batch) == window
    cfg = make_runner_config(training_tokens=tokens, train_batch_size_tokens=batch, n_batches_in_buffer=64)
    assert cfg.dead_feature_window == window


def test_the_train_command_sets_the_short_run_window_unless_given() -> None:
    from sae_mask_plugin.training.flags import parse_config

    assert parse_config(["--training_tokens", "1000000"])[0].dead_feature_window == 48
    with pytest.warns(AuxKWindowWarning, match="dead_feature_window = 5000 steps"):
        assert parse_config(["--dead_feature_window", "5000"])[0].dead_feature_window == 5000
    multi = {"a": BatchTopKTrainingSAEConfig(d_in=576, d_sae=256, k=8)}
    with pytest.warns(AuxKWindowWarning, match=r"AuxK \(batchtopk\)"):
        MaskedMultiSAETrainingRunnerConfig(
            saes=multi,
            hook_names="blocks.1.hook_resid_post",
            training_tokens=20_480,
            train_batch_size_tokens=2048,
        )
