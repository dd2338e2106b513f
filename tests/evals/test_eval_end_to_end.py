"""Each eval end to end on a small real SAE on the embedded default, with tiny settings.

Probe accuracies are checked against an independent scikit-learn `LogisticRegression` on activations the test
computes itself with plain TransformerLens, and every JSON is validated against its output class (schema).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter
from sae_probes.utils_data import get_train_test_indices
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from sae_mask_plugin.embedded.probing_data import load_ood_task, load_probing_dataset
from sae_mask_plugin.evals import SUMMARY_FILENAME, evaluate_saes
from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig
from sae_mask_plugin.evals.absorption.eval_output import AbsorptionEvalOutput
from sae_mask_plugin.evals.absorption.main import run_eval as run_absorption
from sae_mask_plugin.evals.activations import ActivationCache, UntrainedPositions
from sae_mask_plugin.evals.cli import main as cli_main
from sae_mask_plugin.evals.common import LazyModel
from sae_mask_plugin.evals.core.eval_config import CoreEvalConfig
from sae_mask_plugin.evals.core.eval_output import CoreEvalOutput
from sae_mask_plugin.evals.core.main import HeldOutTokens
from sae_mask_plugin.evals.core.main import run_eval as run_core
from sae_mask_plugin.evals.ood_probing.eval_config import OodProbingEvalConfig
from sae_mask_plugin.evals.ood_probing.eval_output import OodProbingEvalOutput
from sae_mask_plugin.evals.ood_probing.main import run_eval as run_ood
from sae_mask_plugin.evals.probing import PROBE_MAX_ITER, single_threaded_blas
from sae_mask_plugin.evals.sparse_probing.eval_config import SparseProbingEvalConfig
from sae_mask_plugin.evals.sparse_probing.eval_output import SparseProbingEvalOutput
from sae_mask_plugin.evals.sparse_probing.main import run_eval as run_sparse_probing

# One worker trains the reference SAE and fills the eval cache for all of them.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reference_sae")]

MODEL = "SmolLM2-135M-Instruct"
HOOK = "blocks.12.hook_resid_post"
SEED = 42
TINY_OOD = OodProbingEvalConfig(
    model_name=MODEL,
    task_names=["5_hist_fig_ismale", "87_glue_cola"],
    num_train=64,
    num_id_test=32,
    num_ood_test=40,
    ks=[1, 4],
    headline_k=4,
    max_seq_len=128,
)
TINY_SPARSE = SparseProbingEvalConfig(
    model_name=MODEL,
    dataset_names=["113_movie_sent", "36_sciq_tf"],
    num_train=64,
    num_test=40,
    ks=[1, 2, 5],
    max_seq_len=128,
)


def _result(output_dir: Path, sae_name: str = "ref") -> dict:
    return json.loads((output_dir / f"{sae_name}_custom_sae_eval_results.json").read_text())


@torch.no_grad()
def _independent_activations(model, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """Last-token activations computed the TransformerLens way: its own tokenization (BOS prepended), left
    padding with an attention mask, so the last token is at -1 in every row: [len(texts), d_model]."""
    rows = []
    for start in range(0, len(texts), batch_size):
        _, cache = model.run_with_cache(
            texts[start : start + batch_size], padding_side="left", names_filter=[HOOK], stop_at_layer=13
        )
        rows.append(cache[HOOK][:, -1])
    return torch.cat(rows)


def _refuse_model_load(*args, **kwargs):
    raise AssertionError("the model was loaded although everything it computes is cached or done")


def _sklearn_accuracy(
    c: float,
    x_train: torch.Tensor,
    y_train: np.ndarray,
    evaluations: list[tuple[torch.Tensor, np.ndarray]],
    row_order: np.ndarray | None = None,
) -> list[float]:
    """Test accuracies of a plain scikit-learn L2 probe at strength `c`, fitted on `x_train` [n, d] (rows in
    `row_order` when given) with single-threaded BLAS, so an unconverged fit takes the eval's own path."""
    order = np.arange(len(y_train)) if row_order is None else row_order
    with single_threaded_blas():
        probe = LogisticRegression(C=c, max_iter=PROBE_MAX_ITER, random_state=SEED).fit(
            x_train.numpy()[order], y_train[order]
        )
        return [probe.score(x.numpy(), y) for x, y in evaluations]


def test_ood_probing(embedded_model, reference_sae, eval_cache, tmp_path):
    run_ood(
        TINY_OOD,
        [("ref", reference_sae)],
        "cpu",
        str(tmp_path),
        model=embedded_model,
        cache_path=str(eval_cache),
    )
    data = _result(tmp_path)
    output = TypeAdapter(OodProbingEvalOutput).validate_python(data)
    assert output.eval_config == TINY_OOD
    assert [d.task_name for d in output.eval_result_details] == TINY_OOD.task_names
    cache = ActivationCache(
        eval_cache, MODEL, HOOK, TINY_OOD.max_seq_len, TINY_OOD.llm_batch_size
    )  # no model
    for detail in output.eval_result_details:
        in_distribution, ood = load_ood_task(detail.task_name)
        assert in_distribution["prompt"].is_unique and ood["prompt"].is_unique
        y = in_distribution["target"].to_numpy()
        train, test = get_train_test_indices(y, 64, 32, pos_ratio=0.5, seed=SEED)
        pool = np.concatenate([train, test])
        ood_rows = np.sort(np.random.RandomState(SEED).choice(len(ood), 40, replace=False))
        id_texts = in_distribution["prompt"].iloc[pool].tolist()
        ood_texts = ood["prompt"].iloc[ood_rows].tolist()
        x_id, x_ood = (
            _independent_activations(embedded_model, id_texts),
            _independent_activations(embedded_model, ood_texts),
        )
        y_ood = ood["target"].to_numpy()[ood_rows]
        # the eval's cached activations are these activations (batched, padded) ...
        torch.testing.assert_close(cache.get(detail.task_name, id_texts), x_id, rtol=1e-3, atol=1e-3)
        # ... and its oracle accuracies are scikit-learn's on them (to one text: the eval refits from a warm start)
        id_accuracies = []
        for seed, c, ood_accuracy in zip(
            TINY_OOD.split_seeds, detail.oracle_C_by_seed, detail.oracle_ood_accuracy_by_seed, strict=True
        ):
            seed_train, seed_test = train_test_split(
                np.arange(96), train_size=64, test_size=32, stratify=y[pool], random_state=seed
            )
            id_accuracy, sklearn_ood_accuracy = _sklearn_accuracy(
                c,
                x_id[seed_train],
                y[pool][seed_train],
                [(x_id[seed_test], y[pool][seed_test]), (x_ood, y_ood)],
            )
            id_accuracies.append(id_accuracy)
            assert ood_accuracy == pytest.approx(sklearn_ood_accuracy, abs=1 / 40 + 1e-9)
        assert detail.oracle_id_accuracy == pytest.approx(np.mean(id_accuracies), abs=1 / 32 + 1e-9)
        assert detail.ood_majority_rate == pytest.approx(max(y_ood.mean(), 1 - y_ood.mean()))
        assert detail.in_headline == (detail.has_ood_signal and detail.invalid_reason is None)
        assert detail.oracle_ood_gap == pytest.approx(detail.oracle_id_accuracy - detail.oracle_ood_accuracy)
        for k, metrics in detail.sae_metrics_by_k.items():
            assert 0.0 <= metrics["sae_ood_accuracy"] <= 1.0
            assert metrics["oracle_minus_sae_ood_accuracy"] == pytest.approx(
                detail.oracle_ood_accuracy - metrics["sae_ood_accuracy"]
            ), k
    headline = [d for d in output.eval_result_details if d.in_headline]
    assert output.headline_tasks == [d.task_name for d in headline]
    assert set(output.excluded_tasks) == set(TINY_OOD.task_names) - set(output.headline_tasks)
    oracle_ood = output.eval_result_metrics.oracle.oracle_ood_accuracy
    assert oracle_ood == (
        pytest.approx(np.mean([d.oracle_ood_accuracy for d in headline])) if headline else None
    )
    assert output.eval_result_metrics.all_tasks.sae_ood_accuracy_all_tasks == pytest.approx(
        np.mean([d.sae_metrics_by_k[4]["sae_ood_accuracy"] for d in output.eval_result_details])
    )


def test_sparse_probing(embedded_model, reference_sae, eval_cache, tmp_path, monkeypatch):
    run_sparse_probing(
        TINY_SPARSE,
        [("ref", reference_sae)],
        "cpu",
        str(tmp_path),
        model=embedded_model,
        cache_path=str(eval_cache),
    )
    data = _result(tmp_path)
    output = TypeAdapter(SparseProbingEvalOutput).validate_python(data)
    dense_c = data["eval_result_unstructured"]["dense_probe_C"]
    selected = data["eval_result_unstructured"]["selected_latents"]
    cache = ActivationCache(eval_cache, MODEL, HOOK, TINY_SPARSE.max_seq_len, TINY_SPARSE.llm_batch_size)
    for detail in output.eval_result_details:
        frame = load_probing_dataset(detail.dataset_name)
        y = frame["target"].to_numpy()
        train, test = get_train_test_indices(y, 64, 40, pos_ratio=0.5, seed=SEED)
        texts = frame["prompt"].iloc[np.concatenate([train, test])].tolist()
        x = cache.get(detail.dataset_name, texts)
        # the eval's cached activations are these activations (batched, padded) ...
        torch.testing.assert_close(x, _independent_activations(embedded_model, texts), rtol=1e-3, atol=1e-3)
        # ... and its LLM accuracy is scikit-learn's on them at the chosen strength; sae-probes fits on a seeded
        # permutation of the training rows, and at a large C the fit stops unconverged, so the order matters
        (accuracy,) = _sklearn_accuracy(
            dense_c[detail.dataset_name],
            x[:64],
            y[train],
            [(x[64:], y[test])],
            row_order=np.random.RandomState(SEED).permutation(64),
        )
        assert detail.llm_test_accuracy == pytest.approx(accuracy, abs=1e-9)
        assert set(detail.sae_metrics_by_k) == {1, 2, 5}  # type: ignore[arg-type]
        assert detail.sae_top_5_test_accuracy == detail.sae_metrics_by_k[5]["test_accuracy"]  # type: ignore[index]
        latents = selected[detail.dataset_name]
        assert [len(latents[str(k)]) for k in (1, 2, 5)] == [1, 2, 5]
        assert latents["5"][:2] == latents["2"]  # one ranking, cut at each k
    assert output.eval_result_metrics.llm.llm_test_accuracy == pytest.approx(
        np.mean([d.llm_test_accuracy for d in output.eval_result_details])
    )
    # a second run with the same data reuses the cached activations: the model is never loaded
    monkeypatch.setattr(LazyModel, "get", _refuse_model_load)
    run_sparse_probing(
        TINY_SPARSE, [("again", reference_sae)], "cpu", str(tmp_path), model=None, cache_path=str(eval_cache)
    )
    assert _result(tmp_path, "again")["eval_result_details"] == data["eval_result_details"]


def test_absorption(embedded_model, reference_sae, eval_cache, tmp_path):
    config = AbsorptionEvalConfig(
        model_name=MODEL, words_per_letter=20, llm_batch_size=32, min_feats_for_eval=1
    )
    run_absorption(
        config,
        [("ref", reference_sae)],
        "cpu",
        str(tmp_path / "a"),
        model=embedded_model,
        cache_path=str(eval_cache),
    )
    output = TypeAdapter(AbsorptionEvalOutput).validate_python(_result(tmp_path / "a"))
    assert output.eval_config.prompt_token_pos == -6  # computed from SmolLM2's tokenizer
    found = output.eval_result_metrics.first_letter_features
    assert found.absorption_evaluated and found.status == "evaluated"
    probe_f1 = output.eval_result_unstructured["probe_f1_by_letter"]
    assert found.num_letters_with_probe_feature == sum(f1 > 0.6 for f1 in probe_f1.values()) >= 1
    letters = {d.first_letter for d in output.eval_result_details}
    assert letters and letters <= {letter for letter, f1 in probe_f1.items() if f1 > 0.6}
    assert 0.0 <= output.eval_result_metrics.mean.mean_absorption_fraction_score <= 1.0  # type: ignore[operator]
    # every artifact is under the cache folder, none in the working directory
    assert not Path("artifacts").exists()
    assert list(Path(eval_cache, "absorption").rglob("probe.pth"))

    # the same probes demanding more letters than exist: an explicit "not evaluated" result, not a crash or {}
    strict = AbsorptionEvalConfig(
        model_name=MODEL, words_per_letter=20, llm_batch_size=32, min_feats_for_eval=27
    )
    run_absorption(
        strict,
        [("ref", reference_sae)],
        "cpu",
        str(tmp_path / "b"),
        model=embedded_model,
        cache_path=str(eval_cache),
    )
    data = _result(tmp_path / "b")
    TypeAdapter(AbsorptionEvalOutput).validate_python(data)
    assert data["eval_result_metrics"]["first_letter_features"]["absorption_evaluated"] is False
    assert "not evaluated" in data["eval_result_metrics"]["first_letter_features"]["status"]
    assert data["eval_result_metrics"]["mean"]["mean_absorption_fraction_score"] is None
    assert data["eval_result_details"] == []


@pytest.mark.parametrize(
    ("seqpos_slice", "exclude_untrained_positions", "first_scored_position"),
    [(None, True, 0), ((2, None), True, 2), ((2, None), False, 0)],
    ids=["all-positions", "trained-positions", "positions-not-excluded"],
)
def test_core(
    embedded_model, reference_sae, tmp_path, seqpos_slice, exclude_untrained_positions, first_scored_position
):
    sae = copy.deepcopy(reference_sae)
    if seqpos_slice is not None:
        sae.cfg.metadata["seqpos_slice"] = seqpos_slice  # as SAELens records a run's `seqpos_slice`
    config = CoreEvalConfig(
        model_name=MODEL,
        batch_size_prompts=4,
        context_size=64,
        n_eval_reconstruction_batches=1,
        n_eval_sparsity_variance_batches=2,
        exclude_untrained_positions=exclude_untrained_positions,
    )
    run_core(config, [("ref", sae)], "cpu", str(tmp_path), model=embedded_model)
    output = TypeAdapter(CoreEvalOutput).validate_python(_result(tmp_path))
    metrics = output.eval_result_metrics
    # L0 recomputed here on the same held-out windows: special tokens and the positions before
    # `first_scored_position` excluded (SAEBench's variance metrics use the same mask)
    tokens = HeldOutTokens(embedded_model, config).tokens
    with torch.no_grad():
        _, cache = embedded_model.run_with_cache(tokens, names_filter=[HOOK], stop_at_layer=13)
        keep = ~torch.isin(tokens, torch.tensor([0, 1, 2]))
        keep[:, :first_scored_position] = False
        latents = sae.encode(cache[HOOK][keep])
    assert metrics.sparsity.l0 == pytest.approx((latents != 0).sum(-1).float().mean().item(), rel=1e-4)
    assert metrics.reconstruction_quality.explained_variance < 1.0
    performance = metrics.model_performance_preservation
    assert performance.ce_loss_without_sae < performance.ce_loss_with_ablation
    assert output.eval_config.dataset.startswith("sae-probes held-out texts")
    assert len(output.eval_result_details) == sae.cfg.d_sae


def test_untrained_positions_answer_saebench_token_comparison():
    """SAEBench builds its core-eval mask as `torch.stack([batch_tokens == token for token in ignore_tokens])`."""
    batch_tokens = torch.tensor([[1, 5, 6, 1, 7], [1, 8, 9, 2, 4]])
    ignore_tokens = {1, 2, UntrainedPositions((2, None))}
    ignored = torch.stack([batch_tokens == token for token in ignore_tokens], dim=0).any(0)
    assert ignored.tolist() == [[True, True, False, True, False], [True, True, False, True, False]]
    assert UntrainedPositions((2, None)) in {UntrainedPositions((2, None))}
    assert UntrainedPositions((2, None)) != UntrainedPositions((1, None))


def test_evaluate_saes_resumes_and_isolates_failures(reference_sae_path, eval_cache, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(reference_sae_path, broken)
    (broken / "sae_weights.safetensors").write_bytes(b"corrupt weights")
    out = tmp_path / "out"
    name = reference_sae_path.name
    sparse = {"sparse_probing": TINY_SPARSE}
    # the activations of TINY_SPARSE are cached by test_sparse_probing (or computed here when run alone)
    summary = evaluate_saes(
        [reference_sae_path, broken], ["sparse_probing"], out, configs=sparse, cache_dir=eval_cache
    )
    assert summary[name]["evals"]["sparse_probing"]["status"] == "done"
    assert summary["broken"]["evals"]["sparse_probing"]["status"] == "failed"
    assert "safetensor" in summary["broken"]["evals"]["sparse_probing"]["error"].lower()
    assert (out / "sparse_probing" / "broken_custom_sae_error.json").is_file()
    assert json.loads((out / SUMMARY_FILENAME).read_text()) == summary
    TypeAdapter(SparseProbingEvalOutput).validate_python(_result(out / "sparse_probing", name))

    # resumed: the done pair is skipped, the broken one fails again, and no model is loaded for either
    monkeypatch.setattr(LazyModel, "get", _refuse_model_load)
    again = evaluate_saes(
        [reference_sae_path, broken], ["sparse_probing"], out, configs=sparse, cache_dir=eval_cache
    )
    assert again[name]["evals"]["sparse_probing"]["status"] == "skipped"
    assert again["broken"]["evals"]["sparse_probing"]["status"] == "failed"
    assert cli_main(["--sae", str(reference_sae_path), "--evals", "sparse_probing", "--out", str(out)]) == 0
    assert cli_main(["--sae", str(broken), "--evals", "sparse_probing", "--out", str(out)]) == 1
