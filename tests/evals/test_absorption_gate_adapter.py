"""The absorption eval's per-letter gate JSON, end to end on a tiny random transformer with SmolLM2's tokenizer."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter, ValidationError
from sae_lens import SAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata
from tiny_transformer import TINY_D_MODEL, TINY_HOOK

from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig
from sae_mask_plugin.evals.absorption.eval_output import AbsorptionEvalOutput
from sae_mask_plugin.evals.absorption.gate import (
    NOT_MEASURABLE,
    AbsorptionGateConfig,
    LetterRecord,
    judge_letter,
    summarize,
)
from sae_mask_plugin.evals.absorption.main import _probe_settings, run_eval

CONFIG = AbsorptionEvalConfig(
    model_name="tiny",
    words_per_letter=8,
    llm_batch_size=64,
    max_k_value=2,
    k_sparse_probe_num_epochs=2,
    min_GT_probe_f1=0.0,
    min_feats_for_eval=1,
    min_probe_positive_words=1,
)
VARIANT_FIELDS = ("absorption_fraction", "full_absorption_rate", "null_other_letter_absorption_fraction")
K1_FIELDS = ("k1_absorption_fraction", "k1_full_absorption_rate")


def _topk_sae(seed: int) -> SAE:
    torch.manual_seed(seed)
    cfg = TopKSAEConfig(
        d_in=TINY_D_MODEL, d_sae=128, k=8, metadata=SAEMetadata(model_name="tiny", hook_name=TINY_HOOK)
    )
    return SAE.from_dict(cfg.to_dict())


def _result(folder: Path, name: str) -> dict:
    return json.loads((folder / f"{name}_custom_sae_eval_results.json").read_text())


def test_per_letter_gate_json_matches_the_gate_and_a_further_sae_needs_no_llm(
    tiny_model, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    run_eval(
        CONFIG,
        [("first", _topk_sae(1))],
        "cpu",
        str(tmp_path / "out"),
        model=tiny_model,
        cache_path=str(cache),
    )
    data = _result(tmp_path / "out", "first")
    output = TypeAdapter(AbsorptionEvalOutput).validate_python(data)
    gate_json = output.eval_result_unstructured["absorption_gate"]
    assert gate_json["headline_variant"] == "scaled"  # d_model 32 < 2304
    assert gate_json["cosine_gates"]["scaled"]["absorber"] == pytest.approx(
        0.1 * math.sqrt(2304 / TINY_D_MODEL)
    )
    assert gate_json["cosine_gates"]["saebench"] == {"absorber": 0.1, "full_absorption": 0.025}
    letters = gate_json["letters"]
    assert [entry["letter"] for entry in letters] == list("abcdefghijklmnopqrstuvwxyz")
    probe_f1 = output.eval_result_unstructured["probe_f1_by_letter"]
    assert all(entry["probe_f1"] == pytest.approx(probe_f1[entry["letter"]]) for entry in letters)

    # the recorded verdicts are the gate's own on the recorded numbers, in both variants
    gate = AbsorptionGateConfig(**{k: v for k, v in gate_json["gate"].items() if k != "min_main_latent_cos"})
    for variant in ("saebench", "scaled"):
        passing = 0
        for entry in letters:
            shared = {k: v for k, v in entry.items() if k not in ("by_variant", "main_latents")}
            scores = entry["by_variant"][variant]
            record = LetterRecord(**shared, **{k: scores[k] for k in VARIANT_FIELDS})
            verdict = judge_letter(record, gate)
            assert (scores["passed"], scores["reasons"]) == (verdict.passed, list(verdict.reasons))
            passing += verdict.passed
        assert gate_json["summary"][variant]["letters_passing"] == passing

    # the main latent's decoder cosine is the probe's cosine with that latent's decoder row
    probe = torch.load(next(cache.rglob("probe.pth")), weights_only=False)
    sae = _topk_sae(1)
    for index, entry in enumerate(letters):
        direction = probe.weights[index].float()
        decoder = sae.W_dec[entry["main_latents"][0]].float()
        assert entry["main_latent_cos"] == pytest.approx(
            torch.cosine_similarity(direction, decoder, dim=0).item(), abs=1e-5
        )

    # the other-letter null scores a letter's words with the next letter's main latents: where both letters
    # share their main latents, the null equals the observed score
    for entry, following in zip(letters, letters[1:] + letters[:1], strict=True):
        scores = entry["by_variant"]["saebench"]
        if entry["main_latents"] == following["main_latents"] and scores["absorption_fraction"] is not None:
            assert scores["null_other_letter_absorption_fraction"] == pytest.approx(
                scores["absorption_fraction"]
            )

    metrics = data["eval_result_metrics"]["gate"]
    summary = gate_json["summary"]["scaled"]
    assert metrics["absorption_letters_passing"] == summary["letters_passing"]
    assert metrics["gated_absorption_fraction_score"] == summary["headline_absorption_fraction"]
    if metrics["absorption_letters_passing"] < CONFIG.min_feats_for_eval:
        assert metrics["status"].startswith(NOT_MEASURABLE)

    _check_k1_scores(data)

    # a further SAE on the same model and hook: probe data and absorption prompts come from the cache
    monkeypatch.setattr(tiny_model, "run_with_cache", _refuse_llm)
    run_eval(
        CONFIG,
        [("second", _topk_sae(2))],
        "cpu",
        str(tmp_path / "out"),
        model=tiny_model,
        cache_path=str(cache),
    )
    second = _result(tmp_path / "out", "second")["eval_result_unstructured"]["absorption_gate"]["letters"]
    assert [e["num_probe_positive_words"] for e in second] == [e["num_probe_positive_words"] for e in letters]
    # the random SAE of the same shape is the same null for both
    assert [e["random_sae_main_latent_f1"] for e in second] == [
        e["random_sae_main_latent_f1"] for e in letters
    ]


def _check_k1_scores(data: dict) -> None:
    """The k = 1 scores of an eval JSON (the score the ground-truth control validated): the headline variant's
    gates only; a letter with a single main latent scores as with SAEBench's main latents; the gated means are
    None below the letters needed, and average the passing letters of the recorded numbers."""
    gate_json = data["eval_result_unstructured"]["absorption_gate"]
    gate = AbsorptionGateConfig(**{k: v for k, v in gate_json["gate"].items() if k != "min_main_latent_cos"})
    metrics = data["eval_result_metrics"]["gate"]
    records = []
    for entry in gate_json["letters"]:
        scores, other = entry["by_variant"]["scaled"], entry["by_variant"]["saebench"]
        assert (
            other["k1_full_absorption_rate"] is None and other["random_sae_k1_full_absorption_rate"] is None
        )
        assert (scores["k1_full_absorption_rate"] is None) == (scores["absorption_fraction"] is None)
        if len(entry["main_latents"]) == 1 and scores["absorption_fraction"] is not None:
            assert scores["k1_full_absorption_rate"] == pytest.approx(scores["full_absorption_rate"])
            assert scores["k1_absorption_fraction"] == pytest.approx(scores["absorption_fraction"])
        shared = {k: v for k, v in entry.items() if k not in ("by_variant", "main_latents")}
        records.append(LetterRecord(**shared, **{k: scores[k] for k in (*VARIANT_FIELDS, *K1_FIELDS)}))
    summary = gate_json["summary"]["scaled"]
    assert metrics["gated_k1_full_absorption_score"] == summary["headline_k1_full_absorption_rate"]
    if summary["letters_passing"] < gate.min_passing_letters:
        assert (
            metrics["gated_k1_full_absorption_score"] is None
            and metrics["gated_full_absorption_score"] is None
        )
    # with a gate open enough for letters to pass here, the k = 1 headline averages exactly the passing letters
    open_gate = replace(
        gate,
        min_probe_f1=0.0,
        min_main_latent_precision=0.0,
        main_latent_cos_at_reference=0.0,
        use_other_letter_null=False,
        use_random_sae_null=False,
    )
    passing = [r for r in records if judge_letter(r, open_gate).passed]
    assert passing and all(r.k1_full_absorption_rate is not None for r in passing)
    assert summarize(records, open_gate).headline_k1_full_absorption_rate == pytest.approx(
        statistics.mean(r.k1_full_absorption_rate for r in passing)
    )
    random_k1 = [
        entry["by_variant"]["scaled"]["random_sae_k1_full_absorption_rate"]
        for entry in gate_json["letters"]
        if entry["probe_f1"] >= gate.min_probe_f1
        and entry["num_probe_positive_words"] >= gate.min_probe_positive_words
        and entry["by_variant"]["scaled"]["random_sae_k1_full_absorption_rate"] is not None
    ]
    assert metrics["random_sae_k1_full_absorption_score"] == pytest.approx(statistics.mean(random_k1))


def _refuse_llm(*args, **kwargs):
    raise AssertionError("the LLM ran although its activations are cached")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_probe_positive_words", 0),
        ("min_main_latent_precision", 1.5),
        ("main_latent_cos_at_reference", 1.0),
    ],
)
def test_bad_gate_settings_are_refused_before_any_model_load(field, value):
    with pytest.raises(ValidationError, match=field):
        AbsorptionEvalConfig(model_name="tiny", **{field: value})


def test_probe_caches_are_keyed_by_the_llm_dtype_and_float32_keeps_its_key():
    float32 = AbsorptionEvalConfig(model_name="m", words_per_letter=60)
    bfloat16 = AbsorptionEvalConfig(model_name="m", words_per_letter=60, llm_dtype="bfloat16")
    settings = _probe_settings(float32, "blocks.3.hook_resid_post", -6)
    assert "llm_dtype" not in settings  # existing float32 probe caches stay valid
    assert _probe_settings(bfloat16, "blocks.3.hook_resid_post", -6) == {**settings, "llm_dtype": "bfloat16"}


def test_a_word_with_nothing_aligned_firing_is_dropped_not_absorbed():
    """Of a letter's 4 probe-positive words, SAEBench scored the 3 whose main latents were silent: one fully
    absorbed, one with an aligned latent firing (partly absorbed), one with only unaligned or negative latents
    (dropped)."""
    import pandas as pd

    from sae_mask_plugin.evals.absorption.main import with_dropped_rate

    raw = pd.DataFrame(
        {
            "letter": ["a", "a", "a"],
            "is_full_absorption": [True, False, False],
            "projection_feat_probe_cos": [[0.5, 0.0], [0.3, 0.1], [0.1, 0.4]],
            "probe_projections": [[2.0, 0.1], [0.5, 0.1], [0.3, -0.2]],
        }
    )
    table = pd.DataFrame({"letter": ["a", "b"], "num_probe_true_positives": [4, 0]})
    dropped = with_dropped_rate(table, raw, aligned_cos=0.2)
    assert dropped["dropped_rate"].tolist() == [0.25, 0.0]
    assert "dropped_rate" not in table  # the table given is left as it was


def test_the_letter_minimum_and_probe_training_are_saebench_defaults():
    """The 20 letters an absorption headline needs and the first-letter probe's training are SAEBench's, named
    once: the eval config inherits the minimum, the gate and the report read the same constant."""
    import inspect

    from sae_bench.evals.absorption.common import train_and_save_probes

    from sae_mask_plugin.evals.absorption.gate import MIN_PASSING_LETTERS
    from sae_mask_plugin.evals.absorption.main import LETTER_PROBE_EPOCHS, LETTER_PROBE_LR
    from sae_mask_plugin.report.gates import MIN_ABSORPTION_LETTERS

    assert AbsorptionEvalConfig().min_feats_for_eval == MIN_PASSING_LETTERS == MIN_ABSORPTION_LETTERS == 20
    assert AbsorptionGateConfig(d_model=576).min_passing_letters == MIN_PASSING_LETTERS
    defaults = inspect.signature(train_and_save_probes).parameters
    assert (defaults["num_epochs"].default, defaults["lr"].default) == (LETTER_PROBE_EPOCHS, LETTER_PROBE_LR)


def test_the_letter_probe_is_trained_under_a_lock_and_once(tmp_path, monkeypatch):
    """Shards sharing a cache take turns on SAEBench's in-place probe files: the build holds the lock (another
    process's `FileLock` on it times out meanwhile), and a second call finds the probe built."""
    from types import SimpleNamespace

    from filelock import FileLock, Timeout

    from sae_mask_plugin.evals.absorption import main as absorption_main

    layout = absorption_main._CacheLayout(
        hook_name=TINY_HOOK,
        settings={"model": "tiny"},
        root=tmp_path,
        sae_dir=tmp_path / "saes" / "a",
        random_name="random",
        random_dir=tmp_path / "random_saes" / "random",
    )
    trained = []

    def fake_training(**kwargs):
        with pytest.raises(Timeout):
            FileLock(str(tmp_path / ".probes.lock"), timeout=0).acquire()
        probe_dir = Path(kwargs["probes_dir"]) / "tiny" / f"layer_{int(TINY_HOOK.split('.')[1])}"
        probe_dir.mkdir(parents=True)
        (probe_dir / "probe.pth").write_bytes(b"probe")
        trained.append(kwargs["hook_point"])

    monkeypatch.setattr(absorption_main, "create_and_train_probe", fake_training)
    truncated = SimpleNamespace(cfg=SimpleNamespace(model_name="tiny"))
    config = AbsorptionEvalConfig(model_name="tiny", prompt_token_pos=-6)
    for _ in range(2):
        absorption_main._train_letter_probe(truncated, config, layout, ["apple"], "cpu")  # type: ignore[arg-type]
    assert trained == [TINY_HOOK]
    assert json.loads((tmp_path / "settings.json").read_text()) == {"model": "tiny"}
