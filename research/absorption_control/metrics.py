"""True absorption from the known features, and SAEBench's measured absorption applied to the same SAE.

True absorption (per parent): among the samples where one of its children fires, the share where the parent's
matched latent stays silent while the child's matched latent fires and its decoder carries the parent direction
(cosine >= `true_cos_threshold`). Latents are matched to true features one to one by decoder cosine (Hungarian).
True dropped share (per parent): the share of those samples where the parent's matched latent is silent and no
firing latent carries the parent direction (so no absorbing child latent either): the letter is lost, not absorbed.

Measured absorption runs SAEBench's first-letter pipeline on tensors: the linear probe
(`train_linear_probe_for_task`), k-sparse probes (`train_k_sparse_probes`), feature-split selection of the main
latents (`add_feature_splits_to_metrics_df`), the probe-positive words of each letter
(`get_stats_and_likely_false_negative_tokens`), and `FeatureAbsorptionCalculator.calculate_absorption` through
`calculate_projection_and_cos_sims`. Only the k-sparse scoring is recomputed per column (`k_sparse_scores`,
`k_sparse_metrics`: SAEBench's row-by-row versions take ~1 min per SAE on this CPU; a test checks they agree). The only stand-in is `ActivationTable`, which plays the LLM: a "word" is a
row index and its "residual stream" is that row of the synthetic activations.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sae_bench.evals.absorption.feature_absorption import (
    ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
    ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
    calculate_projection_and_cos_sims,
    get_stats_and_likely_false_negative_tokens,
)
from sae_bench.evals.absorption.feature_absorption_calculator import FeatureAbsorptionCalculator
from sae_bench.evals.absorption.k_sparse_probing import (
    KSparseProbe,
    add_feature_splits_to_metrics_df,
    get_sparse_probing_raw_results_filename,
    sae_k_sparse_metadata,
    train_k_sparse_probes,
)
from sae_bench.evals.absorption.main import _aggregate_results_df
from sae_bench.evals.absorption.probing import LinearProbe, train_linear_probe_for_task
from sae_bench.evals.absorption.vocab import LETTERS
from sae_lens import SAE
from sae_lens.util import cosine_similarities
from scipy.optimize import linear_sum_assignment

from research.absorption_control.config import NUM_LETTERS, FeatureHierarchy, MeasureConfig
from sae_mask_plugin.evals.absorption.gate import CosineGates, cosine_gates, headline_variant
from sae_mask_plugin.evals.absorption.main import k1_main_latents, with_dropped_rate

_HOOK_LAYER = 0
_SAE_NAME = "control"


def match_latents(decoder: torch.Tensor, feature_vectors: torch.Tensor) -> torch.Tensor:
    """One-to-one match of true features to latents by decoder cosine; shape [num_features], -1 = unmatched.

    decoder: [width, d]; feature_vectors: [num_features, d].
    """
    cos = cosine_similarities(feature_vectors.float(), decoder.float()).cpu()
    features, latents = linear_sum_assignment(-cos.numpy())
    matched = torch.full((feature_vectors.shape[0],), -1, dtype=torch.long)
    matched[torch.as_tensor(features)] = torch.as_tensor(latents, dtype=torch.long)
    return matched


@dataclass(frozen=True)
class TrueAbsorption:
    """Per parent: the absorbed share of child firings, the share where its latent is silent, the dropped share
    (silent and carried by no firing latent), the count."""

    by_parent: dict[int, float]
    parent_silent: dict[int, float]
    dropped: dict[int, float]
    child_firings: dict[int, int]

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.by_parent.values()) if self.by_parent else None


def true_absorption(
    feature_acts: torch.Tensor,
    latent_acts: torch.Tensor,
    decoder: torch.Tensor,
    feature_vectors: torch.Tensor,
    hierarchy: FeatureHierarchy,
    cos_threshold: float,
) -> TrueAbsorption:
    """True absorption of every parent of `hierarchy` with at least one child firing.

    feature_acts: [n, num_features] true activations; latent_acts: [n, width] the SAE's; decoder: [width, d];
    feature_vectors: [num_features, d].
    """
    matched = match_latents(decoder, feature_vectors)
    cos = cosine_similarities(decoder.float(), feature_vectors.float()).cpu()  # [width, num_features]
    fires = latent_acts.cpu() > 0
    n = feature_acts.shape[0]

    def latent_fires(feature: int) -> torch.Tensor:
        latent = int(matched[feature])
        return fires[:, latent] if latent >= 0 else torch.zeros(n, dtype=torch.bool)

    by_parent, parent_silent, dropped, child_firings = {}, {}, {}, {}
    for parent, children in hierarchy.children.items():
        absorbed = silent = lost = total = 0
        parent_quiet = ~latent_fires(parent)
        # [n]: a latent carrying the parent direction fires
        carried = fires[:, cos[:, parent] >= cos_threshold].any(dim=1)
        for child in children:
            rows = feature_acts[:, child].cpu() > 0
            latent = int(matched[child])
            carries_parent = latent >= 0 and float(cos[latent, parent]) >= cos_threshold
            total += int(rows.sum())
            silent += int((rows & parent_quiet).sum())
            lost += int((rows & parent_quiet & ~carried).sum())
            if carries_parent:
                absorbed += int((rows & parent_quiet & latent_fires(child)).sum())
        if total:
            by_parent[parent] = absorbed / total
            parent_silent[parent] = silent / total
            dropped[parent] = lost / total
            child_firings[parent] = total
    return TrueAbsorption(by_parent, parent_silent, dropped, child_firings)


class ActivationTable:
    """The LLM as SAEBench's `FeatureAbsorptionCalculator` sees it, for precomputed activations.

    With the calculator built by `absorption_calculator`, a prompt is exactly the word, and the word is a row
    index of `activations` ([n, d]); `run_with_cache` returns those rows as a one-position residual stream.
    """

    tokenizer = "row indices"  # the calculator only asserts that a tokenizer exists

    def __init__(self, activations: torch.Tensor) -> None:
        self.activations = activations

    def run_with_cache(
        self, prompts: list[str], names_filter: list[str]
    ) -> tuple[None, dict[str, torch.Tensor]]:
        rows = self.activations[[int(prompt) for prompt in prompts]]
        return None, {names_filter[0]: rows.unsqueeze(1)}

    def to_tokens(self, prompt: str) -> torch.Tensor:  # noqa: ARG002 - one token per word
        return torch.zeros(1, 1, dtype=torch.long)


def absorption_calculator(test_acts: torch.Tensor, gates: CosineGates) -> FeatureAbsorptionCalculator:
    """SAEBench's calculator with its thresholds (cosine gates as given) over `ActivationTable(test_acts)`."""
    return FeatureAbsorptionCalculator(
        model=ActivationTable(test_acts),  # type: ignore[arg-type]
        icl_word_list=[],
        max_icl_examples=0,
        base_template="{word}",
        answer_formatter=str,
        example_separator="",
        shuffle_examples=False,
        prepend_separator_to_first_example=False,
        word_token_pos=-1,
        full_absorption_probe_cos_sim_threshold=gates.full_absorption,
        absorption_fraction_probe_cos_sim_threshold=gates.absorber,
        probe_projection_proportion_threshold=ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
        absorption_fraction_max_absorbing_latents=ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
    )


def train_letter_probe(
    train_acts: torch.Tensor,
    train_letters: torch.Tensor,
    test_acts: torch.Tensor,
    test_letters: torch.Tensor,
    batch_size: int,
) -> LinearProbe:
    """SAEBench's 26-way first-letter probe on the activations (its settings but `batch_size`); acts [n, d],
    letters [n]."""
    probe, _ = train_linear_probe_for_task(
        pd.DataFrame({"answer_class": train_letters.numpy()}),
        pd.DataFrame({"answer_class": test_letters.numpy()}),
        device=torch.device("cpu"),
        train_activations=train_acts.numpy(),  # type: ignore[arg-type]
        test_activations=test_acts.numpy(),  # type: ignore[arg-type]
        num_classes=NUM_LETTERS,
        batch_size=batch_size,
    )
    return probe.cpu()


@torch.no_grad()
def k_sparse_scores(
    sae: SAE,
    probe: LinearProbe,
    k_probes: dict[int, dict[int, KSparseProbe]],
    test_acts: torch.Tensor,
    test_letters: torch.Tensor,
) -> pd.DataFrame:
    """The score columns of SAEBench's `eval_probe_and_sae_k_sparse_raw_scores`, computed per column instead of
    per row (same values; `token` is the row index): `token`, `answer_letter`, `score_probe_{letter}`,
    `score_sparse_sae_{letter}_k_{k}`. test_acts: [n, d]; test_letters: [n]."""
    sae_acts = sae.encode(test_acts.to(sae.device, dtype=sae.dtype)).float().cpu()
    probe_scores = probe(test_acts.to(dtype=probe.weights.dtype)).float().cpu()
    columns: dict[str, Any] = {
        "token": [str(i) for i in range(len(test_letters))],
        "answer_letter": [LETTERS[int(letter)] for letter in test_letters],
    }
    for letter_index, letter in enumerate(LETTERS):
        columns[f"score_probe_{letter}"] = probe_scores[:, letter_index].numpy()
        for k, probes in k_probes.items():
            columns[f"score_sparse_sae_{letter}_k_{k}"] = probes[letter_index](sae_acts).numpy()
    return pd.DataFrame(columns)


def _precision_recall_f1(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """sklearn's binary precision, recall and F1 (0 where undefined), for boolean arrays."""
    true_positives = float((truth & predicted).sum())
    precision = true_positives / predicted.sum() if predicted.sum() else 0.0
    recall = true_positives / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def k_sparse_metrics(raw_df: pd.DataFrame, metadata: pd.DataFrame, max_k_value: int) -> pd.DataFrame:
    """The columns of SAEBench's `build_metrics_df` that absorption reads (probe and k-sparse precision, recall,
    F1 at score > 0; main latents and their decoder cosines), without its AUCs and summed-activation variants."""
    rows = []
    for letter in LETTERS:
        truth = (raw_df["answer_letter"] == letter).to_numpy()
        row: dict[str, Any] = {"letter": letter}
        scores = {"probe": raw_df[f"score_probe_{letter}"].to_numpy()}
        for k in range(1, max_k_value + 1):
            scores[f"sparse_sae_{k}"] = raw_df[f"score_sparse_sae_{letter}_k_{k}"].to_numpy()
        for name, score in scores.items():
            precision, recall, f1 = _precision_recall_f1(truth, score > 0)
            row |= {f"f1_{name}": f1, f"precision_{name}": precision, f"recall_{name}": recall}
        for k in range(1, max_k_value + 1):
            meta = metadata[(metadata["letter"] == letter) & (metadata["k"] == k)].iloc[0]
            row[f"sparse_sae_k_{k}_feats"] = meta["feats"]
            row[f"cos_probe_sae_dec_k_{k}"] = meta["cos_probe_sae_dec"]
        rows.append(row)
    return pd.DataFrame(rows)


@torch.enable_grad()  # SAEBench trains the k-sparse probes inside
def measured_absorption(
    sae: SAE,
    probe: LinearProbe,
    train_acts: torch.Tensor,
    train_letters: torch.Tensor,
    test_acts: torch.Tensor,
    test_letters: torch.Tensor,
    measure: MeasureConfig,
) -> dict[str, Any]:
    """SAEBench's first-letter absorption of `sae`: as SAEBench runs it (`saebench`), with cosine gates scaled to
    d (`scaled`), and with only the k = 1 main latent, no feature-split latents (`k1`; `k1_headline`: with the
    eval's headline gates for d, as the eval scores it); per letter also the other-letter null (`other_letter_*`:
    scored with the next letter's main latents), and per table the eval's dropped-word rate (`dropped_rate_*`,
    `main.with_dropped_rate`: probe-positive words where nothing aligned with the probe fires).

    Returns the headline means over letters whose probe F1 passes `min_probe_f1` and, per letter, what a signal
    gate reads: probe F1, probe-positive test words, main latents with their precision, recall and decoder
    cosine with the probe, absorption fraction and full-absorption rate (both gate settings).
    """
    train_labels = [(str(i), int(letter)) for i, letter in enumerate(train_letters)]
    ks = list(range(1, measure.max_k_value + 1))
    k_probes = train_k_sparse_probes(
        sae,
        train_labels,
        train_acts,
        ks=ks,
        batch_size=measure.sparse_probe_batch_size,
        precalc_sae_acts=True,
    )
    with torch.no_grad():
        raw_df = k_sparse_scores(sae, probe, k_probes, test_acts, test_letters)
        metadata = sae_k_sparse_metadata(sae, probe, k_probes, sae_name=_SAE_NAME, layer=_HOOK_LAYER)
    metrics_df = k_sparse_metrics(raw_df, metadata, measure.max_k_value)
    add_feature_splits_to_metrics_df(metrics_df, measure.max_k_value, measure.f1_jump_threshold)
    with tempfile.TemporaryDirectory() as folder:
        raw_df.to_parquet(Path(folder) / get_sparse_probing_raw_results_filename(_SAE_NAME, _HOOK_LAYER))
        likely_negatives = get_stats_and_likely_false_negative_tokens(
            metrics_df, _SAE_NAME, _HOOK_LAYER, Path(folder)
        )

    k1_negatives = k1_main_latents(likely_negatives)
    other_letter_negatives = {  # the null: each letter scored with the next letter's main latents
        letter: replace(stats, split_feats=likely_negatives[LETTERS[(i + 1) % NUM_LETTERS]].split_feats)
        for i, (letter, stats) in enumerate(likely_negatives.items())
    }
    gates = cosine_gates(sae.cfg.d_in)
    by_gate = {}
    for gate, variant, negatives in (
        ("saebench", "saebench", likely_negatives),
        ("scaled", "scaled", likely_negatives),
        ("k1", "saebench", k1_negatives),
        ("k1_headline", headline_variant(sae.cfg.d_in), k1_negatives),
        ("other_letter_saebench", "saebench", other_letter_negatives),
        ("other_letter_scaled", "scaled", other_letter_negatives),
    ):
        calculator = absorption_calculator(test_acts, gates[variant])
        absorption_df = calculate_projection_and_cos_sims(calculator, sae, probe, _HOOK_LAYER, negatives)
        by_gate[gate] = (
            with_dropped_rate(
                _aggregate_results_df(absorption_df), absorption_df, gates[variant].absorber
            ).set_index("letter")
            if len(absorption_df)
            else None
        )

    letters = []
    for letter_index, letter in enumerate(LETTERS):
        row = metrics_df[metrics_df["letter"] == letter].iloc[0]
        stats = likely_negatives[letter]
        main = [int(latent) for latent in row["split_feats"]]
        k = len(main)
        detail: dict[str, Any] = {
            "letter": letter,
            "parent_feature": letter_index,
            "probe_f1": float(row["f1_probe"]),
            "num_probe_true_positives": stats.probe_true_positives,
            "main_latents": main,
            "main_precision": float(row[f"precision_sparse_sae_{k}"]) if k else None,
            "main_recall": float(row[f"recall_sparse_sae_{k}"]) if k else None,
            "main_f1": float(row[f"f1_sparse_sae_{k}"]) if k else None,
            "main_cos_probe_dec": [float(c) for c in row[f"cos_probe_sae_dec_k_{k}"]] if k else [],
            "k1_latent": int(row["sparse_sae_k_1_feats"][0]),
            "k1_precision": float(row["precision_sparse_sae_1"]),
            "k1_recall": float(row["recall_sparse_sae_1"]),
            "k1_f1": float(row["f1_sparse_sae_1"]),
            "k1_cos_probe_dec": float(row["cos_probe_sae_dec_k_1"][0]),
            "main_latents_recall_on_probe_positive": (
                stats.split_feats_true_positives / stats.probe_true_positives
                if stats.probe_true_positives
                else 0.0
            ),
        }
        for gate, agg in by_gate.items():
            present = agg is not None and letter in agg.index
            for key, column in (
                ("absorption_fraction", "mean_absorption_fraction"),
                ("full_absorption_rate", "full_absorption_rate"),
                ("dropped_rate", "dropped_rate"),
            ):
                detail[f"{key}_{gate}"] = float(agg.loc[letter, column]) if present else None  # type: ignore[union-attr]
        letters.append(detail)

    passing = [d for d in letters if d["probe_f1"] > measure.min_probe_f1]

    def mean_of(key: str) -> float | None:
        values = [d[key] for d in passing if d[key] is not None]
        return statistics.mean(values) if values else None

    return {
        "num_letters_probe_f1_passing": len(passing),
        **{
            f"mean_{kind}_{gate}": mean_of(f"{kind}_{gate}")
            for kind in ("absorption_fraction", "full_absorption_rate")
            for gate in ("saebench", "scaled", "k1")
        },
        "mean_dropped_rate_k1_headline": mean_of("dropped_rate_k1_headline"),
        "letters": letters,
    }
