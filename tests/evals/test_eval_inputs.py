"""Bad input to `sae-mask eval` / `evaluate_saes` fails with one clear message before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sae_mask_plugin.evals import EvalInputError, validate_inputs
from sae_mask_plugin.evals.cli import main
from sae_mask_plugin.evals.common import is_complete_result
from sae_mask_plugin.files import write_json_atomic


def _sae_folder(
    root: Path, name: str = "sae", d_in: int = 576, hook: str = "blocks.12.hook_resid_post"
) -> Path:
    folder = root / name
    folder.mkdir()
    cfg = {
        "d_in": d_in,
        "d_sae": 64,
        "architecture": "jumprelu",
        "metadata": {"model_name": "SmolLM2-135M-Instruct", "hook_name": hook},
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    (folder / "sae_weights.safetensors").write_bytes(b"not loaded by validation")
    return folder


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any model load in these tests is a failure: bad input must be caught first."""
    from transformer_lens import HookedTransformer

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(HookedTransformer, "from_pretrained_no_processing", refuse)
    monkeypatch.setattr(HookedTransformer, "from_pretrained", refuse)


@pytest.mark.parametrize(
    ("make", "evals", "extra", "message"),
    [
        (lambda root: root / "missing", "core", [], "does not exist"),
        (lambda root: (root / "empty").mkdir() or root / "empty", "core", [], "has no cfg.json"),
        (lambda root: _sae_folder(root, d_in=100), "core", [], "d_in=100"),
        (lambda root: _sae_folder(root, hook="blocks.40.hook_resid_post"), "core", [], "only 30 layers"),
        (lambda root: _sae_folder(root, hook="hook_embed"), "core", [], "is not a `blocks.<layer>.<hook>`"),
        (
            lambda root: _sae_folder(root, hook="blocks.3.attn.hook_z"),
            "core",
            [],
            "the evals support the hooks",
        ),
        (lambda root: _sae_folder(root, hook="blocks.3.hook_mlp_out"), "absorption", [], "absorption needs"),
        (lambda root: _sae_folder(root), "absorption,probing", [], "unknown eval(s) probing"),
        (lambda root: _sae_folder(root), "ood", ["--ood-tasks", "5_hist_fig_ismale,99_moon"], "99_moon"),
        (lambda root: _sae_folder(root), "sparse_probing", ["--datasets", "no_such_set"], "no_such_set"),
        (
            lambda root: _sae_folder(root),
            "core,scr",
            [],
            "SmolLM2-135M-Instruct is the embedded offline default",
        ),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, capsys, make, evals, extra, message):
    folder = make(tmp_path)
    code = main(["--sae", str(folder), "--evals", evals, "--out", str(tmp_path / "out"), *extra])
    error = capsys.readouterr().err
    assert code == 2
    assert message in error
    assert error.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "out").exists()


def test_scr_and_tpp_offline_are_one_line_before_any_model_load(tmp_path, capsys, monkeypatch):
    folder = _sae_folder(tmp_path)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_in"], cfg["metadata"]["model_name"] = 768, "pythia-160m-deduped"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    monkeypatch.setattr("sae_mask_plugin.embedded.model.hub_reachable", lambda: False)
    assert main(["--sae", str(folder), "--evals", "tpp", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "this machine cannot reach the hub" in err
    assert "LabHC/bias_in_bios_class_set1" in err and not (tmp_path / "out").exists()


def test_corrupt_cfg_json(tmp_path):
    folder = _sae_folder(tmp_path)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(EvalInputError, match="not valid JSON"):
        validate_inputs([folder], ["core"])
    (folder / "cfg.json").write_text(
        json.dumps({"d_sae": 8, "metadata": {"hook_name": "blocks.1.hook_resid_post"}})
    )
    with pytest.raises(EvalInputError, match="lacks a usable field"):
        validate_inputs([folder], ["core"])


def test_missing_weights(tmp_path):
    folder = _sae_folder(tmp_path)
    (folder / "sae_weights.safetensors").unlink()
    with pytest.raises(EvalInputError, match="no sae_weights.safetensors"):
        validate_inputs([folder], ["core"])


def test_valid_input_names_and_model_override(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _sae_folder(tmp_path / "a"), _sae_folder(tmp_path / "b")
    sources, configs = validate_inputs(
        [first, second], "ood_probing,core,ood", model_name="SmolLM2-135M-Instruct"
    )
    assert list(configs) == ["ood", "core"]
    assert [source.name for source in sources] == ["a_sae", "b_sae"]  # same folder name twice: made unique
    assert {source.hook_name for source in sources} == {"blocks.12.hook_resid_post"}


def test_atomic_json_and_completeness(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    assert is_complete_result(path)
    path.write_text('{"a": ')
    assert not is_complete_result(path)
    assert not is_complete_result(tmp_path / "absent.json")
