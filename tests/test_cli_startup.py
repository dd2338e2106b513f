"""`sae-mask --help`, `--version`, every command's `--help` and bad input to every command answer before torch,
SAELens, SAEBench or TransformerLens load: each command runs in a fresh interpreter, which then names the heavy
packages it imported. (How fast that is: `benchmarks/cli_startup.py`.) `sae-mask train` reads its flags from a
snapshot of SAELens's, and model names are checked against a snapshot of TransformerLens's; each snapshot must be
the one the installed package gives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sae_mask_plugin import cli

HEAVY_PACKAGES = ("torch", "sae_lens", "sae_bench", "transformer_lens")

RUN_COMMAND = f"""
import contextlib, io, json, sys
from sae_mask_plugin.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        status = main(sys.argv[1:])
    except SystemExit as exit_:
        status = exit_.code
heavy = sorted(name for name in {HEAVY_PACKAGES!r} if name in sys.modules)
print(json.dumps({{"status": status, "out": out.getvalue(), "err": err.getvalue(), "heavy": heavy}}))
"""


def run_fresh(argv: list[str]) -> dict:
    """Run `sae-mask argv` in a fresh interpreter: its exit status, stdout, stderr and the heavy packages loaded."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_COMMAND, *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_version_loads_nothing_heavy():
    from sae_mask_plugin import __version__

    ran = run_fresh(["--version"])
    assert (ran["status"], ran["heavy"], ran["out"]) == (0, [], f"sae-mask {__version__}\n")


@pytest.mark.parametrize("argv", [["--help"], *[[command, "--help"] for command in sorted(cli.SUBCOMMANDS)]])
def test_help_loads_nothing_heavy(argv):
    ran = run_fresh(argv)
    assert (ran["status"], ran["heavy"]) == (0, []), ran["err"]
    assert "usage" in ran["out"].lower()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--p", "2"], "masking.p must be a probability in [0, 1), got 2.0"),
        (["train", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
        (["train", "--architecture", "masked_topk"], "invalid choice: 'masked_topk'"),
        (["train", "--architecture", "standard", "--k", "4"], "unrecognized arguments: --k 4"),
        (["mask-tokens", "--p", "2"], "need 0 < --p < 1"),
        (["compare", "{tmp}/missing", "--out", "{tmp}/report"], "not a folder"),
        (["compare", "{tmp}", "--out", "{tmp}/report"], "no saved SAE"),
        (["compare", "{tmp}", "--out", "{tmp}/report", "--recipe", "no_such_recipe"], "shipped recipes: "),
        (["sweep", "no_such_recipe", "--dry-run"], "shipped recipes: "),
        (["sweep", "cpu_demo_quick", "--set", "bad"], "expected KEY=VALUE"),
        (["sweep", "cpu_demo_quick", "--dry-run", "--set", "training_tokens=-5"], "training_tokens must be"),
        (["eval", "--sae", "{tmp}/missing", "--out", "{tmp}/evals"], "does not exist"),
        (["eval", "--evals", "bogus", "--sae", "{tmp}", "--out", "{tmp}/evals"], "unknown eval(s) bogus"),
        (["sweep", "cpu_demo_quick", "--dry-run", "--shard", "5/4"], "shard 5/4 does not exist"),
        (["info", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (
            ["mask-tokens", "--model", "no-such-model", "--hook", "blocks.12.hook_resid_post"],
            "'no-such-model' is not a TransformerLens model name",
        ),
        (["mask-tokens", "--model", "pythia-160m-dedupd"], "did you mean pythia-160m-deduped"),
        (["train", "--model_name", "no-such-model"], "'no-such-model' is not a TransformerLens model name"),
        (["calibrate", "--sae", "{tmp}/missing"], "is not a saved SAE"),
        (["calibrate", "--sae", "{tmp}", "--tokens", "0"], "--tokens must be >= 1"),
        (["demo", "--out", "{tmp}"], "is not a previous run of the demo"),
        (["demo", "--out", "{tmp}/notes.txt"], "exists and is not a folder"),
        (
            ["learning-curve", "cpu_demo_quick", "--out", "{tmp}", "--k", "16", "--points", "0"],
            "--points must be >= 1",
        ),
        (["learning-curve", "no_such_recipe", "--out", "{tmp}", "--k", "16"], "shipped recipes: "),
    ],
)
def test_bad_input_answers_before_anything_heavy_loads(argv, message, tmp_path):
    (tmp_path / "notes.txt").write_text("not an SAE")
    ran = run_fresh([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    assert (ran["status"], ran["heavy"]) == (2, []), ran["err"]
    assert message in ran["err"] and "Traceback" not in ran["err"]


def test_every_command_has_a_bad_input_case():
    cases = test_bad_input_answers_before_anything_heavy_loads.pytestmark[0].args[1]
    assert {argv[0] for argv, _ in cases} == set(cli.SUBCOMMANDS)


def test_train_help_documents_the_architecture_chosen():
    ran = run_fresh(["train", "--architecture", "jumprelu", "--help"])
    assert (ran["status"], ran["heavy"]) == (0, [])
    assert "JumpReLUTrainingSAEConfig ['cfg.sae']" in ran["out"] and "--l0_coefficient" in ran["out"]


def test_the_flag_snapshot_is_the_installed_saelens_one():
    from sae_mask_plugin.training.cli import FLAGS_FILE, load_flags
    from sae_mask_plugin.training.flags import describe_flags

    assert json.loads(FLAGS_FILE.read_text()) == describe_flags(), (
        f"{FLAGS_FILE.name} is out of date; regenerate it with: python -m sae_mask_plugin.training.flags"
    )
    assert load_flags() is not None


def test_the_model_name_snapshot_is_the_installed_transformer_lens_one():
    from sae_mask_plugin.embedded.model_names import MODEL_NAMES_FILE, describe_model_names, load_model_names

    assert json.loads(MODEL_NAMES_FILE.read_text()) == describe_model_names(), (
        f"{MODEL_NAMES_FILE.name} is out of date; regenerate it with: python -m sae_mask_plugin.embedded.model_names"
    )
    assert "pythia-160m-deduped" in load_model_names()["aliases"]["EleutherAI/pythia-160m-deduped"]


def test_with_another_transformer_lens_than_the_snapshot_names_come_from_it(monkeypatch, tmp_path):
    from sae_mask_plugin.embedded import model_names

    stale = tmp_path / "model_names.json"
    stale.write_text(json.dumps({"versions": {"transformer-lens": "0.0"}, "official": [], "aliases": {}}))
    monkeypatch.setattr(model_names, "MODEL_NAMES_FILE", stale)
    assert model_names.load_model_names() == model_names.describe_model_names()


def test_the_snapshot_parser_has_every_flag_and_help_of_saelens_parser():
    from sae_mask_plugin.training.cli import flag_parser, load_flags
    from sae_mask_plugin.training.defaults import sae_subgroups
    from sae_mask_plugin.training.flags import build_parser

    flags = load_flags()
    for architecture in sae_subgroups():
        argv = ["--architecture", architecture]
        saelens_parser = build_parser()
        saelens_parser._preprocessing(argv)
        assert flag_parser(argv, flags).format_help() == saelens_parser.format_help(), architecture


def test_with_another_saelens_than_the_snapshot_saelens_parses_it_all(monkeypatch, capsys):
    from sae_mask_plugin.training import cli as train_cli

    monkeypatch.setattr(train_cli, "installed_versions", lambda: {"sae-lens": "0.0", "simple-parsing": "0.0"})
    assert train_cli.load_flags() is None
    assert train_cli.main(["--p", "2"]) == 2
    assert "masking.p must be a probability in [0, 1), got 2.0" in capsys.readouterr().err
