"""Every expected failure of `sae-mask` ends as one line on stderr and exit status 2, never a traceback; `--debug`
shows the traceback (that `--help` and bad input import nothing heavy: `test_cli_startup.py`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sae_mask_plugin import cli
from sae_mask_plugin.errors import DEBUG_ENV_VAR, SaeMaskUserError

TINY_TRAIN = [
    "--training_tokens",
    "2048",
    "--context_size",
    "32",
    "--store_batch_size_prompts",
    "4",
    "--n_batches_in_buffer",
    "16",
    "--train_batch_size_tokens",
    "256",
    "--d_sae",
    "64",
]


@pytest.fixture
def offline(monkeypatch):
    """No hub: names that are not cached locally cannot load (as on an offline machine)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("sae_mask_plugin.embedded.model.hub_reachable", lambda timeout_s=3.0: False)


def run_expecting_user_error(argv: list[str], capfd) -> str:
    """Run `sae-mask argv` in this process; assert status 2 and no traceback; return stderr."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_info:  # argparse's own usage errors
        status = exit_info.code
    out, err = capfd.readouterr()
    assert status == 2, (out, err)
    assert "Traceback" not in out + err
    return err


def test_argument_errors_answer_without_tracebacks(tmp_path, capfd):
    err = run_expecting_user_error(["mask-tokens", "--p", "2"], capfd)
    assert "need 0 < --p < 1" in err
    assert "expected KEY=VALUE" in run_expecting_user_error(["sweep", "cpu_demo_quick", "--set", "x"], capfd)
    assert "--out" in run_expecting_user_error(["eval", "--sae", str(tmp_path)], capfd)


def test_unknown_and_offline_models(offline, tmp_path, capfd):
    err = run_expecting_user_error(["mask-tokens", "--model", "pythia-160m-dedupd"], capfd)
    assert err.startswith("sae-mask mask-tokens: 'pythia-160m-dedupd' is not a TransformerLens model name")
    assert "did you mean pythia-160m-deduped" in err and "SmolLM2-135M-Instruct" in err
    err = run_expecting_user_error(["mask-tokens", "--model", "pythia-160m-deduped"], capfd)
    assert err.startswith(
        "sae-mask mask-tokens: model 'pythia-160m-deduped' is not in the local Hugging Face cache"
    )
    out = str(tmp_path / "out")
    err = run_expecting_user_error(
        ["train", "--model_name", "pythia-160m-deduped", "--output_path", out], capfd
    )
    assert "hub cannot be reached" in err
    err = run_expecting_user_error(["train", "--model_name", "no-such-model", "--output_path", out], capfd)
    assert "'no-such-model' is not a TransformerLens model name" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mask-tokens", "--hook", "blocks.12.hook_resid_pots"], "did you mean blocks.12.hook_resid_post"),
        (["train", "--mask_token", "two words", "--p", "0.3"], "is not a single token"),
        (["compare", "{tmp}/missing", "--out", "{tmp}/report"], "not a folder"),
        (["compare", "{tmp}", "--out", "{tmp}/report"], "no saved SAE"),
        (
            ["compare", "{tmp}", "--out", "{tmp}/r", "--study-reference", "nope"],
            "no study reference named 'nope'",
        ),
        (["eval", "--sae", "{tmp}/missing", "--out", "{tmp}/evals"], "does not exist"),
        (["demo", "--out", "{tmp}"], "not a previous run of the demo"),
        (["demo", "--out", "{tmp}/new", "--set", "training_tokens=-5"], "training_tokens must be"),
        (["sweep", "no_such_recipe", "--dry-run"], "shipped recipes: "),
        (["sweep", "cpu_demo_quick", "--dry-run", "--set", "runner.devise=cpu"], "did you mean device"),
        (["sweep", "cpu_demo_quick", "--dry-run", "--shard", "3/2"], "shard 3/2 does not exist"),
        (["train", "--bogus"], "error: unrecognized arguments: --bogus (see sae-mask train --help)"),
        (["sweep"], "error: the following arguments are required: recipe (see sae-mask sweep --help)"),
        (["eval", "--sae", "{tmp}"], "error: the following arguments are required: --out"),
        (["compare"], "error: the following arguments are required: RUN_DIR"),
        (["demo", "--quick", "--full"], "error: argument --full: not allowed with argument --quick"),
        (["calibrate"], "error: the following arguments are required: --sae"),
        (["info", "--no-such-flag"], "error: unrecognized arguments: --no-such-flag"),
        (["mask-tokens", "--p", "x"], "error: argument --p: invalid float value: 'x'"),
        (
            ["learning-curve", "cpu_demo_quick", "--out", "{tmp}/curve"],
            "the following arguments are required: --k",
        ),
        (
            ["learning-curve", "cpu_demo_quick", "--out", "{tmp}/curve", "--k", "16", "--evals", "scr"],
            "--evals: the recipe runs core, absorption, sparse_probing, ood, not scr",
        ),
        (
            [
                "learning-curve",
                "cpu_demo_quick",
                "--out",
                "{tmp}/curve",
                "--k",
                "16",
                "--set",
                "runner.devise=cpu",
            ],
            "did you mean device",
        ),
    ],
)
def test_expected_failures_are_one_line_messages(argv, message, tmp_path, capfd):
    (tmp_path / "notes.txt").write_text("not an SAE, not a demo")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    if argv[0] == "train":
        argv += ["--output_path", str(tmp_path / "out")]
    err = run_expecting_user_error(argv, capfd)
    assert err.startswith(f"sae-mask {argv[0]}: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_a_mask_token_that_fails_the_norm_check_stops_with_its_message(tmp_path, capfd):
    out = tmp_path / "out"
    argv = ["train", "--mask_token", "<|endoftext|>", "--p", "0.3", *TINY_TRAIN, "--output_path", str(out)]
    err = run_expecting_user_error(argv, capfd)
    assert "sae-mask train: " in err and "masking.max_norm_ratio" in err
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(DEBUG_ENV_VAR, "0")  # restored after the test, which `--debug` sets to 1
    with pytest.raises(SaeMaskUserError, match="not a folder"):
        cli.main(["--debug", "compare", str(tmp_path / "missing"), "--out", str(tmp_path / "report")])
    with pytest.raises(ValueError, match="masking.p must be a probability"):  # train's config errors too
        cli.main(["train", "--debug", "--p", "2", "--output_path", str(tmp_path / "out")])


def test_the_console_prints_no_traceback_unless_debug(tmp_path):
    argv = [sys.executable, "-m", "sae_mask_plugin.cli", "compare", str(tmp_path / "missing"), "--out", "r"]
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip() == f"sae-mask compare: not a folder: {tmp_path / 'missing'}"
    debug = subprocess.run([*argv, "--debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "RunFolderError" in debug.stderr


def test_public_names_load_on_use_and_register_the_embedded_model():
    script = (
        "import sys\n"
        "import sae_mask_plugin\n"
        "assert 'torch' not in sys.modules\n"
        "assert set(sae_mask_plugin.__all__) <= set(dir(sae_mask_plugin))\n"
        "sae_mask_plugin.MaskingConfig\n"
        "from transformer_lens import loading_from_pretrained as loading\n"
        "assert getattr(loading.get_official_model_name, '_sae_mask_embedded', False)\n"
        "for name in sae_mask_plugin.__all__:\n"
        "    getattr(sae_mask_plugin, name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_light_copies_of_choices_agree_with_their_modules():
    from sae_lens import constants

    from sae_mask_plugin import files
    from sae_mask_plugin.evals import cli as eval_cli
    from sae_mask_plugin.evals import runner
    from sae_mask_plugin.sweep import cli as sweep_cli
    from sae_mask_plugin.sweep import execute

    assert tuple(eval_cli.EVAL_NAMES) == runner.EVAL_NAMES and tuple(eval_cli.PRESETS) == runner.PRESETS
    assert tuple(eval_cli.OFFLINE_EVAL_NAMES) == runner.OFFLINE_EVAL_NAMES
    assert tuple(sweep_cli.LAUNCHERS) == execute.LAUNCHERS
    for name in ("SAE_CFG_FILENAME", "SAE_WEIGHTS_FILENAME", "RUNNER_CFG_FILENAME"):
        assert getattr(files, name) == getattr(constants, name)


def test_an_interrupted_training_prints_its_checkpoint_and_exits_with_the_signal_status(monkeypatch, capsys):
    import signal

    from sae_mask_plugin import cli
    from sae_mask_plugin.errors import TrainingInterrupted

    def interrupted(argv):
        raise TrainingInterrupted("stopped by SIGTERM; complete checkpoint: /ckpt/123", signal.SIGTERM, None)

    monkeypatch.setattr("sae_mask_plugin.info.main", interrupted)
    assert cli.main(["info"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert (
        "sae-mask info: stopped by SIGTERM; complete checkpoint: /ckpt/123" in err and "Traceback" not in err
    )
