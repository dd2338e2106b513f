"""SAEBench's first-letter absorption eval, run offline on a given model, with every artifact in a cache folder.

Differences from `sae_bench.evals.absorption.main.run_eval`, all of them plumbing (the probing and absorption
computations are SAEBench's own functions):

- the model is passed in (or loaded by name), and its forward stops after the SAE's block;
- the word-token position in the prompt is computed from the tokenizer unless given;
- an optional letter-stratified word list replaces the full alphabetic vocabulary for the probe, the k-sparse
  probes and the absorption prompts (SAEBench reads `get_alpha_tokens` in three places; here the list is
  passed to SAEBench's functions that take one);
- probes and per-SAE tables live under `cache_path`, keyed by model, hook, settings and SAE weights (never in
  the working directory or in site-packages);
- too few first-letter features gives an explicit result instead of an empty dict; Python's `random` is
  seeded before every step that draws from it.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sae_bench.evals.absorption.common import create_and_train_probe, load_df_or_run, load_probe
from sae_bench.evals.absorption.eval_output import AbsorptionResultDetail
from sae_bench.evals.absorption.feature_absorption import (
    ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
    ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
    FEATURE_ABSORPTION_EXPERIMENT_NAME,
    StatsAndLikelyFalseNegativeResults,
    calculate_projection_and_cos_sims,
    get_stats_and_likely_false_negative_tokens,
)
from sae_bench.evals.absorption.feature_absorption_calculator import FeatureAbsorptionCalculator
from sae_bench.evals.absorption.k_sparse_probing import (
    SPARSE_PROBING_EXPERIMENT_NAME,
    run_k_sparse_probing_experiment,
)
from sae_bench.evals.absorption.main import _aggregate_results_df
from sae_bench.evals.absorption.prompting import first_letter_formatter
from sae_bench.evals.absorption.vocab import LETTERS, get_alpha_tokens
from sae_lens import SAE
from transformer_lens import HookedTransformer
from transformers import PreTrainedTokenizerBase

from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig
from sae_mask_plugin.evals.absorption.eval_output import (
    AbsorptionEvalOutput,
    AbsorptionGateMetrics,
    AbsorptionMeanMetrics,
    AbsorptionMetricCategories,
    FirstLetterFeatureMetrics,
)
from sae_mask_plugin.evals.absorption.gate import (
    AbsorptionGateConfig,
    AbsorptionGateSummary,
    CosineGates,
    LetterRecord,
    cosine_gates,
    headline_variant,
    summarize,
)
from sae_mask_plugin.evals.absorption.prompt_cache import CachedPromptActivations
from sae_mask_plugin.evals.common import (
    EvalInputError,
    LazyModel,
    hook_layer,
    path_safe,
    run_each_sae,
    sae_fingerprint,
    saebench_output_fields,
    settings_key,
)
from sae_mask_plugin.evals.means import mean_of_present
from sae_mask_plugin.files import build_lock, write_json_atomic
from sae_mask_plugin.llm_dtype import UNRECORDED_LLM_DTYPE

# SAEBench's in-context examples per prompt (fixed inside its probe dataset builder).
MAX_ICL_EXAMPLES = 10
LETTER_PROBE_EPOCHS = 50
LETTER_PROBE_LR = 1e-2
"""The 26-way first-letter probe's training (SAEBench's `train_and_save_probes` defaults)."""
_PROBE_HOOK_SUFFIX = "hook_resid_post"
_AGGREGATION_ONLY = (
    "min_GT_probe_f1",
    "min_feats_for_eval",
    "min_probe_positive_words",
    "min_main_latent_precision",
    "main_latent_cos_at_reference",
)


class StopAtHookLayer:
    """A `HookedTransformer` whose `run_with_cache` stops right after block `layer`.

    SAEBench's absorption code reads one `hook_resid_post` but runs the whole model; everything else is
    delegated to the wrapped model unchanged.
    """

    def __init__(self, model: HookedTransformer, layer: int):
        self._model = model
        self._stop_at_layer = layer + 1

    def run_with_cache(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("stop_at_layer", self._stop_at_layer)
        return self._model.run_with_cache(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def check_absorption_hook(hook_name: str) -> None:
    """SAEBench's absorption probes and prompts read `blocks.<layer>.hook_resid_post` only."""
    if not hook_name.endswith(_PROBE_HOOK_SUFFIX):
        raise EvalInputError(f"absorption needs an SAE on a `{_PROBE_HOOK_SUFFIX}` hook, not {hook_name!r}")


def word_token_position(tokenizer: PreTrainedTokenizerBase, prompt_template: str) -> int:
    """Position (from the end) of the `{word}` token in `prompt_template`, for this tokenizer.

    Found by tokenizing the template around a marker word that the tokenizer holds as one token.
    """
    before, after = prompt_template.split("{word}")
    suffix_ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    for marker in (" cat", "cat", " a"):
        tail = tokenizer(marker, add_special_tokens=False)["input_ids"] + suffix_ids
        ids = tokenizer(before + marker + after, add_special_tokens=False)["input_ids"]
        if len(tail) == len(suffix_ids) + 1 and ids[-len(tail) :] == tail:
            return -len(tail)
    raise ValueError(f"cannot locate the word token of {prompt_template!r} with this tokenizer")


def first_letter_word_list(
    tokenizer: PreTrainedTokenizerBase, words_per_letter: int | None, seed: int
) -> list[str]:
    """SAEBench's alphabetic vocabulary tokens, or a letter-stratified sample of at most `words_per_letter`.

    The sample prefers whole words (a leading space, three letters or more) and fills up with the other
    alphabetic tokens of the letter when there are too few; the draw is seeded and independent of vocab order.
    """
    vocab = get_alpha_tokens(tokenizer)  # type: ignore[arg-type]
    if words_per_letter is None:
        return vocab
    rng = random.Random(seed)
    by_letter: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for word in sorted(set(vocab)):
        whole_word = word.startswith(" ") and len(word.strip()) >= 3
        by_letter[word.strip()[0].lower()][0 if whole_word else 1].append(word)
    words: list[str] = []
    for letter in LETTERS:
        preferred, others = by_letter[letter]
        chosen = rng.sample(preferred, min(words_per_letter, len(preferred)))
        chosen += rng.sample(others, min(words_per_letter - len(chosen), len(others)))
        words += chosen
    return words


def _probe_settings(config: AbsorptionEvalConfig, hook_name: str, token_pos: int) -> dict[str, Any]:
    return {
        "model": config.model_name,
        "hook": hook_name,
        "words_per_letter": config.words_per_letter,
        "prompt_template": config.prompt_template,
        "prompt_token_pos": token_pos,
        "seed": config.random_seed,
        # float32 caches keep their keys; another LLM dtype gets probes and prompt activations of its own
        **({"llm_dtype": config.llm_dtype} if config.llm_dtype != UNRECORDED_LLM_DTYPE else {}),
    }


def _aggregate(
    agg_df: pd.DataFrame, probe_f1: dict[str, float], config: AbsorptionEvalConfig
) -> tuple[AbsorptionMeanMetrics, list[AbsorptionResultDetail]]:
    """SAEBench's per-letter aggregation over letters whose probe F1 passes `min_GT_probe_f1`."""
    rows = [row for _, row in agg_df.iterrows() if probe_f1[row["letter"]] > config.min_GT_probe_f1]
    details = [
        AbsorptionResultDetail(
            first_letter=row["letter"],
            mean_absorption_fraction=row["mean_absorption_fraction"],
            full_absorption_rate=row["full_absorption_rate"],
            num_full_absorption=row["num_full_absorption"],
            num_probe_true_positives=row["num_probe_true_positives"],
            num_split_features=row["num_split_feats"],
        )
        for row in rows
    ]

    def mean_and_std(values: list[float]) -> tuple[float | None, float | None]:
        if not values:
            return None, None
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None

    fraction, fraction_std = mean_and_std([d.mean_absorption_fraction for d in details])
    full, full_std = mean_and_std([d.full_absorption_rate for d in details])
    split, split_std = mean_and_std([float(d.num_split_features) for d in details])
    metrics = AbsorptionMeanMetrics(
        mean_absorption_fraction_score=fraction,
        mean_full_absorption_score=full,
        mean_num_split_features=split,
        std_dev_absorption_fraction_score=fraction_std,
        std_dev_full_absorption_score=full_std,
        std_dev_num_split_features=split_std,
    )
    return metrics, details


def random_sae_like(sae: SAE, seed: int) -> SAE:
    """A freshly initialised SAE of `sae`'s class and config (SAELens's own initialisation, seeded): the null
    an SAE's main latents must beat. For a JumpReLU SAE the threshold starts at 0."""
    torch.manual_seed(seed)
    return type(sae)(sae.cfg).to(sae.device).eval()


def other_letter_nulls(
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults],
) -> dict[str, StatsAndLikelyFalseNegativeResults]:
    """Each letter's probe-positive words paired with the main latents of the next letter (a->b, ..., z->a)."""
    letters = list(likely_negs)
    return {
        letter: replace(
            likely_negs[letter], split_feats=likely_negs[letters[(i + 1) % len(letters)]].split_feats
        )
        for i, letter in enumerate(letters)
    }


def k1_main_latents(
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults],
) -> dict[str, StatsAndLikelyFalseNegativeResults]:
    """Each letter's probe-positive words with only its k = 1 main latent (SAEBench's feature-split latents left
    out): the variant whose full-absorption rate rank-tracks true absorption in `docs/absorption_control/`."""
    return {
        letter: replace(stats, split_feats=stats.split_feats[:1]) for letter, stats in likely_negs.items()
    }


@dataclass(frozen=True)
class _AbsorptionContext:
    """What every absorption computation of one SAE evaluation shares."""

    prompt_model: CachedPromptActivations
    probe: torch.nn.Module
    layer: int
    config: AbsorptionEvalConfig
    words: list[str]  # the in-context examples' pool


@dataclass(frozen=True)
class _CacheLayout:
    """Where one SAE evaluation's artifacts live under the cache folder: the probe and the absorption prompts'
    activations under `root` (per model, hook and probe `settings`), the SAE's tables under `sae_dir` (keyed by
    its weights and every setting they depend on; the letter thresholds only enter the aggregation, so a changed
    SAE or config never reuses them), the random SAE's under `random_dir` (keyed by the SAE's shape instead)."""

    hook_name: str
    settings: dict[str, Any]
    root: Path
    sae_dir: Path
    random_name: str
    random_dir: Path

    @property
    def probes_dir(self) -> Path:
        return self.root / "probes"


def _cache_layout(
    config: AbsorptionEvalConfig, sae: SAE, sae_name: str, cache_path: str | Path
) -> _CacheLayout:
    """The cache layout of evaluating `sae` (named `sae_name`) with `config` under `cache_path`."""
    hook_name = sae.cfg.metadata.hook_name
    settings = _probe_settings(config, hook_name, config.prompt_token_pos)  # type: ignore[arg-type]
    root = (
        Path(cache_path)
        / "absorption"
        / path_safe(config.model_name)
        / f"{path_safe(hook_name)}-{settings_key(settings)}"
    )
    table_settings = {k: v for k, v in asdict(config).items() if k not in _AGGREGATION_ONLY}
    sae_key = settings_key({"sae": sae_fingerprint(sae), "config": table_settings})
    random_name = f"random-{type(sae).__name__}-{sae.cfg.d_in}x{sae.cfg.d_sae}"
    architecture = {key: value for key, value in sae.cfg.to_dict().items() if key != "metadata"}  # e.g. k
    random_key = settings_key({"config": table_settings, "sae": architecture})
    return _CacheLayout(
        hook_name=hook_name,
        settings=settings,
        root=root,
        sae_dir=root / "saes" / f"{path_safe(sae_name)}-{sae_key}",
        random_name=random_name,
        random_dir=root / "random_saes" / f"{random_name}-{random_key}",
    )


def _train_letter_probe(
    truncated: StopAtHookLayer,
    config: AbsorptionEvalConfig,
    layout: _CacheLayout,
    words: list[str],
    device: str,
) -> None:
    """SAEBench's 26-way first-letter probe at the layout's hook on `words`, trained unless already cached.
    SAEBench writes the probe's files in place, so processes sharing the cache (shards of one sweep) take turns
    (`build_lock`): the first trains it, the others find it built."""
    layer = hook_layer(layout.hook_name)
    with build_lock(layout.probes_dir):
        if (layout.probes_dir / str(truncated.cfg.model_name) / f"layer_{layer}" / "probe.pth").exists():
            return
        random.seed(config.random_seed)  # SAEBench's probe train/test split draws from `random`
        torch.manual_seed(config.random_seed)
        create_and_train_probe(
            model=truncated,  # type: ignore[arg-type]
            formatter=first_letter_formatter(),
            hook_point=layout.hook_name,
            probes_dir=layout.probes_dir,
            vocab=words,
            batch_size=config.llm_batch_size,
            num_epochs=LETTER_PROBE_EPOCHS,
            lr=LETTER_PROBE_LR,
            device=torch.device(device),
            base_template=config.prompt_template,
            pos_idx=config.prompt_token_pos,  # type: ignore[arg-type]
        )
        write_json_atomic(layout.root / "settings.json", layout.settings)


def _letter_absorption(
    context: _AbsorptionContext,
    sae: SAE,
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults],
    gates: CosineGates,
    path: Path,
    force: bool,
) -> pd.DataFrame:
    """SAEBench's per-letter absorption table (`_aggregate_results_df`) with the cosine gates `gates`, cached
    at `path`; letters without probe-positive words are absent."""

    def compute() -> pd.DataFrame:
        calculator = FeatureAbsorptionCalculator(
            model=context.prompt_model,  # type: ignore[arg-type]
            icl_word_list=context.words,
            max_icl_examples=MAX_ICL_EXAMPLES,
            base_template=context.config.prompt_template,
            answer_formatter=first_letter_formatter(),
            word_token_pos=context.config.prompt_token_pos,  # type: ignore[arg-type]
            full_absorption_probe_cos_sim_threshold=gates.full_absorption,
            absorption_fraction_probe_cos_sim_threshold=gates.absorber,
            probe_projection_proportion_threshold=ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
            absorption_fraction_max_absorbing_latents=ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
            batch_size=context.config.llm_batch_size,
        )
        random.seed(
            context.config.random_seed
        )  # the in-context examples of each prompt are drawn from `random`
        raw = calculate_projection_and_cos_sims(
            calculator, sae, context.probe, layer=context.layer, likely_negs=likely_negs
        )
        if not len(raw):
            return pd.DataFrame({"letter": []})
        return with_dropped_rate(_aggregate_results_df(raw), raw, gates.absorber)

    return load_df_or_run(compute, path, force=force)


def with_dropped_rate(table: pd.DataFrame, raw: pd.DataFrame, aligned_cos: float) -> pd.DataFrame:
    """SAEBench's per-letter table with `dropped_rate`: the share of a letter's probe-positive words where the main
    latents are silent (every word SAEBench scores) and no latent among the top projecting ones both points along
    the probe (decoder cosine >= `aligned_cos`, the absorber gate) and projects positively onto it. Such a word is
    not absorbed (nothing carries the letter), it is dropped; SAEBench's scores do not tell the two apart."""
    aligned = raw.apply(
        lambda row: any(
            cos >= aligned_cos and projection > 0
            for cos, projection in zip(
                row["projection_feat_probe_cos"], row["probe_projections"], strict=True
            )
        ),
        axis=1,
    )
    dropped = (~aligned & ~raw["is_full_absorption"].astype(bool)).groupby(raw["letter"]).sum()
    table = table.copy()
    table["dropped_rate"] = [
        float(dropped.get(letter, 0)) / positives if positives else 0.0
        for letter, positives in zip(table["letter"], table["num_probe_true_positives"], strict=True)
    ]
    return table


@dataclass(frozen=True)
class _ProbedSae:
    """An SAE (the evaluated one or its random null) with SAEBench's k-sparse probing results: the per-letter
    metrics (k = 1: the main latent) and each letter's probe-positive test words with the main latents' hits
    among them. Its absorption tables go under `tables_dir`, recomputed when `force`."""

    sae: SAE
    metrics_df: pd.DataFrame
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults]
    tables_dir: Path
    force: bool


def _k_sparse_probing(
    truncated: StopAtHookLayer,
    sae: SAE,
    sae_name: str,
    config: AbsorptionEvalConfig,
    layout: _CacheLayout,
    tables_dir: Path,
    force: bool,
) -> _ProbedSae:
    """SAEBench's k-sparse probing of `sae` at the layout's hook, its experiment cached under `tables_dir`."""
    layer = hook_layer(layout.hook_name)
    experiment_dir = tables_dir / SPARSE_PROBING_EXPERIMENT_NAME
    torch.manual_seed(config.random_seed)
    metrics_df = run_k_sparse_probing_experiment(
        model=truncated,  # type: ignore[arg-type]
        sae=sae,
        layer=layer,
        sae_name=sae_name,
        force=force,
        max_k_value=config.max_k_value,
        f1_jump_threshold=config.f1_jump_threshold,
        prompt_template=config.prompt_template,
        prompt_token_pos=config.prompt_token_pos,  # type: ignore[arg-type]
        device=str(sae.device),
        k_sparse_probe_l1_decay=config.k_sparse_probe_l1_decay,
        k_sparse_probe_batch_size=config.k_sparse_probe_batch_size,
        k_sparse_probe_num_epochs=config.k_sparse_probe_num_epochs,
        eval_batch_size=config.eval_k_sparse_probe_batch_size,
        precalc_k_sparse_probe_sae_acts=config.precalc_k_sparse_probe_sae_acts,
        experiment_dir=experiment_dir,
        probes_dir=layout.probes_dir,
        verbose=False,
    )
    likely_negs = get_stats_and_likely_false_negative_tokens(
        metrics_df, sae_name, layer, experiment_dir / sae_name
    )
    return _ProbedSae(sae, metrics_df, likely_negs, tables_dir, force)


def _by_letter(table: pd.DataFrame | None, column: str) -> dict[str, float]:
    """`{letter: value}` of one column (empty without the table, or for a cached table written before the column)."""
    if table is None or column not in table:
        return {}
    return dict(zip(table["letter"], table[column].astype(float), strict=True))


def letter_records(
    metrics_df: pd.DataFrame,
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults],
    random_metrics_df: pd.DataFrame,
    observed: pd.DataFrame | None,
    null: pd.DataFrame | None,
    k1: pd.DataFrame | None = None,
) -> list[LetterRecord]:
    """The gate's per-letter records of one SAE and one cosine-gate variant, from SAEBench's k-sparse probing
    metrics (k = 1: the main latent), the probe-positive words, the random SAE's metrics and the absorption
    tables with the SAE's own (`observed`), the next letter's (`null`) and only the k = 1 (`k1`) main latents
    (None: not scored)."""
    random_f1 = _by_letter(random_metrics_df, "f1_sparse_sae_1")
    fraction, full = (
        _by_letter(observed, "mean_absorption_fraction"),
        _by_letter(observed, "full_absorption_rate"),
    )
    k1_fraction, k1_full = _by_letter(k1, "mean_absorption_fraction"), _by_letter(k1, "full_absorption_rate")
    k1_dropped = _by_letter(k1, "dropped_rate")
    null_fraction = _by_letter(null, "mean_absorption_fraction")
    records = []
    for _, row in metrics_df.iterrows():
        letter, stats = row["letter"], likely_negs[row["letter"]]
        positives = stats.probe_true_positives
        records.append(
            LetterRecord(
                letter=letter,
                probe_f1=float(row["f1_probe"]),
                num_probe_positive_words=positives,
                main_latent_precision=float(row["precision_sparse_sae_1"]),
                main_latent_recall=float(row["recall_sparse_sae_1"]),
                main_latent_f1=float(row["f1_sparse_sae_1"]),
                main_latent_cos=float(row["cos_probe_sae_dec_k_1"][0]),
                main_latents_recall_on_probe_positive=stats.split_feats_true_positives / positives
                if positives
                else 0.0,
                absorption_fraction=fraction.get(letter),
                full_absorption_rate=full.get(letter),
                k1_absorption_fraction=k1_fraction.get(letter),
                k1_full_absorption_rate=k1_full.get(letter),
                k1_dropped_rate=k1_dropped.get(letter),
                null_other_letter_absorption_fraction=null_fraction.get(letter),
                random_sae_main_latent_f1=random_f1[letter],
            )
        )
    return records


def gate_config(config: AbsorptionEvalConfig, d_model: int) -> AbsorptionGateConfig:
    """The letter gate of `config` for a model of width `d_model`."""
    return AbsorptionGateConfig(
        d_model=d_model,
        min_probe_positive_words=config.min_probe_positive_words,
        min_probe_f1=config.min_GT_probe_f1,
        min_main_latent_precision=config.min_main_latent_precision,
        main_latent_cos_at_reference=config.main_latent_cos_at_reference,
        min_passing_letters=config.min_feats_for_eval,
    )


def _letters_json(
    records_by_variant: dict[str, list[LetterRecord]],
    summaries: dict[str, AbsorptionGateSummary],
    random_scores: dict[str, dict[str, dict[str, float]]],
    likely_negs: dict[str, StatsAndLikelyFalseNegativeResults],
) -> list[dict[str, Any]]:
    """One entry per letter: the SAE-side quantities and main latents (SAEBench's split features, the k = 1
    latent first), then per cosine-gate variant the scores (the k = 1 ones: None where not computed), the
    random SAE's (`random_scores`: `{variant: {key: {letter: score}}}`) and the verdict."""
    variant_fields = (
        "absorption_fraction",
        "full_absorption_rate",
        "k1_absorption_fraction",
        "k1_full_absorption_rate",
        "k1_dropped_rate",
        "null_other_letter_absorption_fraction",
    )
    letters = []
    first = next(iter(records_by_variant.values()))
    for i, record in enumerate(first):
        shared = {k: v for k, v in asdict(record).items() if k not in variant_fields}
        shared["main_latents"] = [int(latent) for latent in likely_negs[record.letter].split_feats]
        by_variant = {}
        for variant, records in records_by_variant.items():
            verdict = summaries[variant].verdicts[i]
            by_variant[variant] = {
                **{k: getattr(records[i], k) for k in variant_fields},
                **{key: scores.get(record.letter) for key, scores in random_scores[variant].items()},
                "passed": verdict.passed,
                "reasons": list(verdict.reasons),
            }
        letters.append({**shared, "by_variant": by_variant})
    return letters


def _absorption_context(
    model: HookedTransformer,
    sae: SAE,
    config: AbsorptionEvalConfig,
    layout: _CacheLayout,
    words: list[str],
    device: str,
) -> _AbsorptionContext:
    """The cached prompt activations and the trained probe that every absorption table of `sae` reads."""
    layer = hook_layer(layout.hook_name)
    prompt_model = CachedPromptActivations(
        StopAtHookLayer(model, layer),
        layout.hook_name,
        config.prompt_token_pos,  # type: ignore[arg-type]
        layout.root / "absorption_prompt_activations.pt",
        sae.dtype,
    )
    probe = load_probe(model.cfg.model_name, layer=layer, probes_dir=layout.probes_dir, device=device)
    return _AbsorptionContext(prompt_model=prompt_model, probe=probe, layer=layer, config=config, words=words)


_TABLE_KINDS = ("observed", "null", "random", "k1", "random_k1")
"""Per cosine-gate variant, SAEBench's per-letter absorption tables: the SAE's, with the next letter's main latents
(the other-letter null), the random SAE's, and (headline variant only) both with only the k = 1 main latent."""


def _absorption_tables(
    context: _AbsorptionContext | None,
    observed: _ProbedSae,
    random_sae: _ProbedSae,
    variants: dict[str, CosineGates],
    headline: str,
) -> dict[str, dict[str, pd.DataFrame | None]]:
    """`{variant: {kind: table}}` of `_TABLE_KINDS`; every table None without a `context` (absorption not
    evaluated). The k = 1 tables, the score the ground-truth control validated, only at the headline's gates."""
    tables: dict[str, dict[str, pd.DataFrame | None]] = {
        variant: dict.fromkeys(_TABLE_KINDS) for variant in variants
    }
    if context is None:
        return tables

    def table(probed: _ProbedSae, likely_negs: Any, gates: CosineGates, name: str) -> pd.DataFrame:
        path = probed.tables_dir / FEATURE_ABSORPTION_EXPERIMENT_NAME / f"{name}.parquet"
        return _letter_absorption(context, probed.sae, likely_negs, gates, path, probed.force)

    for variant, gates in variants.items():
        tables[variant] |= {
            "observed": table(observed, observed.likely_negs, gates, variant),
            "null": table(
                observed, other_letter_nulls(observed.likely_negs), gates, f"{variant}_other_letter_null"
            ),
            "random": table(random_sae, random_sae.likely_negs, gates, variant),
        }
    tables[headline] |= {
        "k1": table(observed, k1_main_latents(observed.likely_negs), variants[headline], f"{headline}_k1"),
        "random_k1": table(
            random_sae, k1_main_latents(random_sae.likely_negs), variants[headline], f"{headline}_k1"
        ),
    }
    context.prompt_model.save()
    return tables


@dataclass(frozen=True)
class _GatedLetters:
    """The per-letter signal gate of one SAE in each cosine-gate variant, with the random SAE's scores
    (`{variant: {key: {letter: score}}}`)."""

    gate: AbsorptionGateConfig
    headline: str
    records: dict[str, list[LetterRecord]]
    summaries: dict[str, AbsorptionGateSummary]
    random_scores: dict[str, dict[str, dict[str, float]]]


def _gate_letters(
    config: AbsorptionEvalConfig,
    d_model: int,
    observed: _ProbedSae,
    random_sae: _ProbedSae,
    tables: dict[str, dict[str, pd.DataFrame | None]],
) -> _GatedLetters:
    """Judge every letter in every cosine-gate variant of `tables`."""
    gate = gate_config(config, d_model)
    records = {
        variant: letter_records(
            observed.metrics_df,
            observed.likely_negs,
            random_sae.metrics_df,
            t["observed"],
            t["null"],
            t["k1"],
        )
        for variant, t in tables.items()
    }
    return _GatedLetters(
        gate=gate,
        headline=headline_variant(d_model),
        records=records,
        summaries={variant: summarize(variant_records, gate) for variant, variant_records in records.items()},
        random_scores={
            variant: {
                "random_sae_absorption_fraction": _by_letter(t["random"], "mean_absorption_fraction"),
                "random_sae_k1_full_absorption_rate": _by_letter(t["random_k1"], "full_absorption_rate"),
            }
            for variant, t in tables.items()
        },
    )


def _gate_metrics(gated: _GatedLetters) -> AbsorptionGateMetrics:
    """The headline variant's gated scores; the random SAE's averages the letters whose probe passes the gate's
    own thresholds, whatever the SAE."""
    gate, summary = gated.gate, gated.summaries[gated.headline]
    probe_letters = [
        r.letter
        for r in gated.records[gated.headline]
        if r.probe_f1 >= gate.min_probe_f1 and r.num_probe_positive_words >= gate.min_probe_positive_words
    ]

    def random_sae_mean(key: str) -> float | None:
        scores = gated.random_scores[gated.headline][key]
        return mean_of_present(scores.get(letter) for letter in probe_letters)

    return AbsorptionGateMetrics(
        absorption_letters_passing=summary.letters_passing,
        absorption_letters_needed=gate.min_passing_letters,
        absorption_letters_eligible=summary.letters_eligible,
        gated_k1_full_absorption_score=summary.headline_k1_full_absorption_rate,
        gated_k1_dropped_score=summary.headline_k1_dropped_rate,
        gated_absorption_fraction_score=summary.headline_absorption_fraction,
        gated_full_absorption_score=summary.headline_full_absorption_rate,
        random_sae_k1_full_absorption_score=random_sae_mean("random_sae_k1_full_absorption_rate"),
        random_sae_absorption_fraction_score=random_sae_mean("random_sae_absorption_fraction"),
        mean_main_latent_precision=summary.mean_main_latent_precision,
        mean_main_latent_recall=summary.mean_main_latent_recall,
        cosine_gate_variant=gated.headline,
        status=summary.describe(),
    )


def _gate_json(
    config: AbsorptionEvalConfig,
    d_model: int,
    gated: _GatedLetters,
    observed: _ProbedSae,
    random_name: str,
) -> dict[str, Any]:
    """The gate's settings, per-letter records and summaries in every variant, and what the nulls are."""
    headline = gated.headline
    return {
        "d_model": d_model,
        "gate": {**asdict(gated.gate), "min_main_latent_cos": gated.gate.min_main_latent_cos},
        "cosine_gates": {variant: asdict(gates) for variant, gates in cosine_gates(d_model).items()},
        "headline_variant": headline,
        "k1_scores": "k1_*: SAEBench's absorption with only the k = 1 main latent per letter (its "
        f"feature-split latents left out), with the {headline} cosine gates only (None in the other "
        "variant); the gated k = 1 full-absorption rate is the score that rank-tracks true absorption in "
        "the ground-truth control (docs/absorption_control/)",
        "nulls": {
            "other_letter": "each letter's probe-positive words scored with the next letter's main "
            "latents (a->b, ..., z->a): the observed absorption must be lower",
            "random_sae": f"{random_name}: SAELens's initialisation, seed {config.random_seed}; the "
            "main latent's F1 must be higher than its k = 1 latent's",
        },
        "letters": _letters_json(gated.records, gated.summaries, gated.random_scores, observed.likely_negs),
        "summary": {variant: s.to_dict() for variant, s in gated.summaries.items()},
    }


def _first_letter_features(
    config: AbsorptionEvalConfig, hook_name: str, probe_f1: dict[str, float]
) -> FirstLetterFeatureMetrics:
    """SAEBench's check: enough letters with a first-letter probe above `min_GT_probe_f1` to evaluate at all."""
    num_found = sum(f1 > config.min_GT_probe_f1 for f1 in probe_f1.values())
    evaluated = num_found >= config.min_feats_for_eval
    status = (
        "evaluated"
        if evaluated
        else f"not evaluated: only {num_found} letters have a first-letter probe with F1 > "
        f"{config.min_GT_probe_f1} in {config.model_name} at {hook_name}; {config.min_feats_for_eval} are needed"
    )
    return FirstLetterFeatureMetrics(
        num_letters_with_probe_feature=num_found,
        min_feats_for_eval=config.min_feats_for_eval,
        absorption_evaluated=evaluated,
        status=status,
    )


@torch.enable_grad()  # SAEBench trains its probes inside this eval
def evaluate_sae(
    model: HookedTransformer,
    sae: SAE,
    sae_name: str,
    config: AbsorptionEvalConfig,
    cache_path: str | Path,
    device: str,
    force_rerun: bool = False,
) -> AbsorptionEvalOutput:
    """Absorption of one SAE with its per-letter signal gate; `config.prompt_token_pos` must be resolved (see
    `run_eval`). The probe, its activations and the absorption prompts' activations are cached per model,
    hook and settings; the random SAE's tables per SAE shape (`_CacheLayout`)."""
    assert config.prompt_token_pos is not None
    check_absorption_hook(sae.cfg.metadata.hook_name)
    layout = _cache_layout(config, sae, sae_name, cache_path)
    layer = hook_layer(layout.hook_name)
    truncated = StopAtHookLayer(model, layer)
    words = first_letter_word_list(model.tokenizer, config.words_per_letter, config.random_seed)  # type: ignore[arg-type]
    _train_letter_probe(truncated, config, layout, words, device)
    observed = _k_sparse_probing(truncated, sae, sae_name, config, layout, layout.sae_dir, force_rerun)
    random_sae_model = random_sae_like(sae, config.random_seed)
    # the random SAE's tables are shared by every SAE of its shape, and SAEBench writes them in place
    with build_lock(layout.random_dir):
        random_sae = _k_sparse_probing(
            truncated, random_sae_model, layout.random_name, config, layout, layout.random_dir, False
        )
    probe_f1 = dict(
        zip(observed.metrics_df["letter"], observed.metrics_df["f1_probe"].astype(float), strict=True)
    )
    found = _first_letter_features(config, layout.hook_name, probe_f1)
    d_model = int(sae.cfg.d_in)
    context = (
        _absorption_context(model, sae, config, layout, words, device) if found.absorption_evaluated else None
    )
    tables = _absorption_tables(
        context, observed, random_sae, cosine_gates(d_model), headline_variant(d_model)
    )
    gated = _gate_letters(config, d_model, observed, random_sae, tables)
    mean_metrics, details = AbsorptionMeanMetrics(), []
    if found.absorption_evaluated:
        mean_metrics, details = _aggregate(tables["saebench"]["observed"], probe_f1, config)  # type: ignore[arg-type]
    return AbsorptionEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=AbsorptionMetricCategories(
            mean=mean_metrics, first_letter_features=found, gate=_gate_metrics(gated)
        ),
        eval_result_details=details,
        eval_result_unstructured={
            "probe_f1_by_letter": probe_f1,
            "num_words": len(words),
            "absorption_gate": _gate_json(config, d_model, gated, observed, layout.random_name),
        },
    )


def resolve_config(config: AbsorptionEvalConfig, model: HookedTransformer) -> AbsorptionEvalConfig:
    """`config` with `prompt_token_pos` computed from the model's tokenizer when it is None."""
    if config.prompt_token_pos is not None:
        return config
    position = word_token_position(model.tokenizer, config.prompt_template)  # type: ignore[arg-type]
    return replace(config, prompt_token_pos=position)


def run_eval(
    config: AbsorptionEvalConfig,
    selected_saes: list[tuple[str, SAE]],
    device: str,
    output_path: str,
    force_rerun: bool = False,
    model: HookedTransformer | LazyModel | None = None,
    cache_path: str | None = None,
) -> dict[str, dict[str, Any]]:
    """SAEBench-style entry: absorption of each `(name, SAE)`, one JSON per SAE in `output_path`; `model` and
    `cache_path` (probes and per-SAE tables) as in `evals.common.run_each_sae`. Existing results, and the
    per-SAE tables they come from, are kept unless `force_rerun`."""

    def evaluate(sae_name: str, sae: SAE, lazy: LazyModel, cache_root: Path) -> AbsorptionEvalOutput:
        llm = lazy.get()
        resolved = resolve_config(config, llm)
        return evaluate_sae(llm, sae, sae_name, resolved, cache_root, device, force_rerun)

    return run_each_sae(
        config, selected_saes, device, output_path, force_rerun, model, cache_path, "absorption", evaluate
    )
