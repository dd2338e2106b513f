"""The default LLM dtype: detection from the CPU's flags, overrides, and its reach into commands and recipes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sae_mask_plugin import llm_dtype
from sae_mask_plugin.llm_dtype import (
    LlmDtypeError,
    check_same_llm_dtype,
    cpu_flags,
    cpu_model,
    default_llm_dtype,
    resolve_llm_dtype,
    with_llm_dtype,
)

NO_BF16 = "fpu sse sse2 avx avx2 fma"
AMX = "fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile"


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    """`cpu(flags)` makes this machine look like a CPU reporting `flags` in /proc/cpuinfo."""

    def report(flags: str) -> None:
        path = tmp_path / "cpuinfo"
        path.write_text(
            f"processor\t: 0\nvendor_id\t: test\nmodel name\t: Test CPU 9000\nflags\t\t: {flags}\n\n"
            "processor\t: 1\n"
        )
        monkeypatch.setattr(llm_dtype, "CPUINFO", path)
        default_llm_dtype.cache_clear()

    yield report
    default_llm_dtype.cache_clear()


@pytest.mark.parametrize(
    ("flags", "expected", "native"),
    [
        ({"avx2", "amx_bf16", "avx512_bf16"}, "bfloat16", ("amx_bf16", "avx512_bf16")),
        ({"avx512f", "avx512_bf16"}, "bfloat16", ("avx512_bf16",)),
        ({"avx2", "fma", "avx512f"}, "float32", ()),
        (set(), "float32", ()),
    ],
)
def test_native_bf16_decides_the_default(flags, expected, native):
    choice = resolve_llm_dtype(flags)
    assert (choice.dtype, choice.native_bf16) == (expected, native)
    if expected == "float32":
        assert (
            "amx_bf16" in choice.reason and "avx512_bf16" in choice.reason and "--llm_dtype" in choice.reason
        )


def test_flags_are_read_from_cpuinfo(cpu, tmp_path):
    cpu(AMX)
    assert {"amx_bf16", "avx512_bf16", "avx2"} <= cpu_flags()
    assert default_llm_dtype().dtype == "bfloat16"
    cpu(NO_BF16)
    assert default_llm_dtype().dtype == "float32"
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_the_cpu_model_is_read_from_cpuinfo(cpu, tmp_path):
    cpu(AMX)
    assert cpu_model() == "Test CPU 9000"
    assert cpu_model(tmp_path / "missing") is None
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpu_model(tmp_path / "arm") is None


def test_explicit_dtypes_win_and_contradictions_are_refused(cpu):
    cpu(NO_BF16)
    assert with_llm_dtype(None, None) == {"dtype": "float32"}
    assert with_llm_dtype({"n_devices": 1}, "bfloat16") == {"n_devices": 1, "dtype": "bfloat16"}
    assert with_llm_dtype({"dtype": "bfloat16"}, None) == {"dtype": "bfloat16"}
    cpu(AMX)
    assert with_llm_dtype(None, None) == {"dtype": "bfloat16"}
    assert with_llm_dtype(None, "float32") == {"dtype": "float32"}
    with pytest.raises(LlmDtypeError, match="contradicts"):
        with_llm_dtype({"dtype": "float32"}, "bfloat16")
    with pytest.raises(LlmDtypeError, match="one of float32, bfloat16"):
        with_llm_dtype(None, "float16")


def test_info_prints_the_deciding_features_and_the_default(cpu, capsys):
    from sae_mask_plugin.info import main

    cpu(NO_BF16)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "amx_bf16 no, avx512_bf16 no" in out and "cpu_model          Test CPU 9000" in out
    assert "default_llm_dtype  float32 (the CPU has neither amx_bf16 nor avx512_bf16" in out
    cpu(AMX)
    main([])
    out = capsys.readouterr().out
    assert "amx_bf16 yes, avx512_bf16 yes" in out and "bfloat16 (the CPU computes bfloat16 natively" in out


def test_train_command_line_sets_the_llm_dtype(cpu):
    from sae_mask_plugin.training.cli import check_args, load_flags, parse_args

    cpu(AMX)
    cfg, _ = parse_args(["--training_tokens", "4096"])
    assert cfg.model_from_pretrained_kwargs["dtype"] == "bfloat16"
    cfg, options = parse_args(["--llm_dtype", "float32"])
    assert cfg.model_from_pretrained_kwargs["dtype"] == "float32" and options.llm_dtype == "float32"
    flags = load_flags()
    assert flags is not None
    with pytest.raises(LlmDtypeError, match="one of float32, bfloat16"):
        check_args(["--llm_dtype", "float16"], flags)


def test_recipes_follow_the_default_and_the_override(cpu):
    from sae_mask_plugin.sweep.plan import format_plan, plan
    from sae_mask_plugin.sweep.recipe import RecipeError, load_recipe

    cpu(AMX)
    recipe = load_recipe("cpu_demo_quick")
    assert recipe.llm_dtype == "bfloat16" and "natively" in recipe.llm_dtype_reason
    groups = plan(recipe)
    assert {group.runner_config(recipe).model_from_pretrained_kwargs["dtype"] for group in groups} == {
        "bfloat16"
    }
    assert {config.llm_dtype for config in recipe.eval_settings().values()} == {"bfloat16"}
    assert "(bfloat16): ~" in format_plan(recipe, groups)
    forced = load_recipe("cpu_demo_quick", {"llm_dtype": "float32"})
    assert forced.llm_dtype == "float32" and forced.llm_dtype_reason == "set by the recipe"
    assert load_recipe("smollm2_study").llm_dtype == "float32"  # pinned: the published study ran in float32
    with pytest.raises(RecipeError, match="contradicts"):
        load_recipe(
            "cpu_demo_quick",
            {"llm_dtype": "float32", "runner.model_from_pretrained_kwargs.dtype": "bfloat16"},
        )
    cpu(NO_BF16)
    assert load_recipe("cpu_demo_quick").llm_dtype == "float32"
    full = load_recipe("cpu_demo_full")
    assert "estimated time on a 2-core CPU, estimated from measured parts (float32): ~" in format_plan(
        full, plan(full)
    )


def _fake_sae_folder(path: Path, recorded: str | None) -> Path:
    """A saved-SAE folder (cfg.json and an empty weights file) for the embedded model at blocks.12."""
    path.mkdir(parents=True)
    metadata = {
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": "blocks.12.hook_resid_post",
        "training_architecture": "batchtopk",
        "training_architecture_details": {"k": 4},
    }
    if recorded is not None:
        metadata["llm_dtype"] = recorded
    cfg = {"architecture": "jumprelu", "d_in": 576, "d_sae": 16, "metadata": metadata}
    (path / "cfg.json").write_text(json.dumps(cfg))
    (path / "sae_weights.safetensors").write_bytes(b"")
    return path


def _no_model_loads(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr("sae_mask_plugin.embedded.model.load_model", refuse)


def test_evals_refuse_another_dtype_than_the_sae_was_trained_in_before_any_model_load(tmp_path, monkeypatch):
    from dataclasses import replace

    from sae_mask_plugin.evals.cli import main
    from sae_mask_plugin.evals.runner import evaluate_saes, make_config, validate_inputs

    _no_model_loads(monkeypatch)
    bf16 = _fake_sae_folder(tmp_path / "bf16", "bfloat16")
    old = _fake_sae_folder(tmp_path / "old", None)
    sources, _ = validate_inputs([bf16, old], "core")
    assert [source.llm_dtype for source in sources] == ["bfloat16", "float32"]
    with pytest.raises(LlmDtypeError, match="trained on bfloat16 LLM activations but float32 was asked for"):
        evaluate_saes([bf16], "core", out_dir=tmp_path / "out", llm_dtype="float32")
    config = replace(make_config("core", ""), llm_dtype="float32")
    with pytest.raises(LlmDtypeError, match="trained on bfloat16"):
        evaluate_saes([bf16], "core", out_dir=tmp_path / "out", configs={"core": config})
    assert main(["--sae", str(bf16), "--out", str(tmp_path / "out"), "--llm_dtype", "float32"]) == 2
    assert not (tmp_path / "out").exists()


def test_calibration_refuses_another_dtype_before_any_model_load(tmp_path, monkeypatch, capsys):
    from sae_mask_plugin.calibration.cli import main

    _no_model_loads(monkeypatch)
    folder = _fake_sae_folder(tmp_path / "sae", "bfloat16")
    assert main(["--sae", str(folder), "--llm_dtype", "float32"]) == 2
    assert "trained on bfloat16" in capsys.readouterr().err


def test_the_same_dtype_passes():
    check_same_llm_dtype("sae", "bfloat16", "bfloat16")
    with pytest.raises(LlmDtypeError, match="--llm_dtype float32"):
        check_same_llm_dtype("sae", "float32", "bfloat16")


def test_bfloat16_on_a_cpu_that_emulates_it_is_said_in_one_line_with_the_way_out(cpu):
    from sae_mask_plugin.llm_dtype import emulated_bf16_notice

    cpu(NO_BF16)
    notice = emulated_bf16_notice("bfloat16", "`--set llm_dtype=float32`")
    assert notice is not None and "\n" not in notice
    assert "emulates" in notice and "6x slower" in notice and "`--set llm_dtype=float32`" in notice
    assert emulated_bf16_notice("float32", "x") is None
    cpu(AMX)
    assert emulated_bf16_notice("bfloat16", "x") is None


def test_the_dry_run_warns_and_estimates_at_the_emulated_speed(cpu):
    from sae_mask_plugin.sweep import load_recipe
    from sae_mask_plugin.sweep.plan import estimated_seconds, format_plan, plan

    cpu(NO_BF16)
    emulated = load_recipe("cpu_demo_quick", {"llm_dtype": "bfloat16"})
    native_float32 = load_recipe("cpu_demo_quick", {"llm_dtype": "float32"})
    text = format_plan(emulated, plan(emulated))
    assert "bfloat16, which this CPU emulates" in text and "`--set llm_dtype=float32`" in text
    assert "bfloat16 emulated" in text  # the estimate's machine says which speed it used
    assert "emulates" not in format_plan(native_float32, plan(native_float32))
    slow = sum(estimated_seconds(emulated, plan(emulated)))
    fast = sum(estimated_seconds(native_float32, plan(native_float32)))
    assert slow > 1.5 * fast
    cpu(AMX)
    assert "emulates" not in format_plan(emulated, plan(emulated))
