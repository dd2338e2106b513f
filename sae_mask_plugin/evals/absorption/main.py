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
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sae_bench.evals.absorption.common import create_and_train_probe, load_df_or_run
from sae_bench.evals.absorption.eval_output import AbsorptionResultDetail
from sae_bench.evals.absorption.feature_absorption import (
    ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
    ABSORPTION_FRACTION_PROBE_COS_THRESHOLD,
    ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
    FEATURE_ABSORPTION_EXPERIMENT_NAME,
    FULL_ABSORPTION_PROBE_COS_THRESHOLD,
    load_and_run_calculate_projections_and_cos_sims,
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
    AbsorptionMeanMetrics,
    AbsorptionMetricCategories,
    FirstLetterFeatureMetrics,
)
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
from sae_mask_plugin.files import write_json_atomic

# SAEBench's in-context examples per prompt (fixed inside its probe dataset builder).
MAX_ICL_EXAMPLES = 10
_PROBE_HOOK_SUFFIX = "hook_resid_post"
_AGGREGATION_ONLY = ("min_GT_probe_f1", "min_feats_for_eval")


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
    """Absorption of one SAE; `config.prompt_token_pos` must be resolved (see `run_eval`)."""
    assert config.prompt_token_pos is not None
    hook_name = sae.cfg.metadata.hook_name
    check_absorption_hook(hook_name)
    layer = hook_layer(hook_name)
    settings = _probe_settings(config, hook_name, config.prompt_token_pos)
    root = (
        Path(cache_path)
        / "absorption"
        / path_safe(config.model_name)
        / f"{path_safe(hook_name)}-{settings_key(settings)}"
    )
    probes_dir = root / "probes"
    # per-SAE tables: keyed by the SAE's weights and every setting they depend on (the letter thresholds only
    # enter the aggregation), so a changed SAE or config never reuses them
    table_settings = {k: v for k, v in asdict(config).items() if k not in _AGGREGATION_ONLY}
    sae_key = settings_key({"sae": sae_fingerprint(sae), "config": table_settings})
    sae_dir = root / "saes" / f"{path_safe(sae_name)}-{sae_key}"
    truncated = StopAtHookLayer(model, layer)
    words = first_letter_word_list(model.tokenizer, config.words_per_letter, config.random_seed)  # type: ignore[arg-type]

    probe_path = probes_dir / str(model.cfg.model_name) / f"layer_{layer}" / "probe.pth"
    if not probe_path.exists():
        random.seed(config.random_seed)  # SAEBench's probe train/test split draws from `random`
        torch.manual_seed(config.random_seed)
        create_and_train_probe(
            model=truncated,  # type: ignore[arg-type]
            formatter=first_letter_formatter(),
            hook_point=hook_name,
            probes_dir=probes_dir,
            vocab=words,
            batch_size=config.llm_batch_size,
            num_epochs=50,
            lr=1e-2,
            device=torch.device(device),
            base_template=config.prompt_template,
            pos_idx=config.prompt_token_pos,
        )
        write_json_atomic(root / "settings.json", settings)

    torch.manual_seed(config.random_seed)
    metrics_df = run_k_sparse_probing_experiment(
        model=truncated,  # type: ignore[arg-type]
        sae=sae,
        layer=layer,
        sae_name=sae_name,
        force=force_rerun,
        max_k_value=config.max_k_value,
        f1_jump_threshold=config.f1_jump_threshold,
        prompt_template=config.prompt_template,
        prompt_token_pos=config.prompt_token_pos,
        device=device,
        k_sparse_probe_l1_decay=config.k_sparse_probe_l1_decay,
        k_sparse_probe_batch_size=config.k_sparse_probe_batch_size,
        k_sparse_probe_num_epochs=config.k_sparse_probe_num_epochs,
        eval_batch_size=config.eval_k_sparse_probe_batch_size,
        precalc_k_sparse_probe_sae_acts=config.precalc_k_sparse_probe_sae_acts,
        experiment_dir=sae_dir / SPARSE_PROBING_EXPERIMENT_NAME,
        probes_dir=probes_dir,
        verbose=False,
    )
    probe_f1 = dict(zip(metrics_df["letter"], metrics_df["f1_probe"].astype(float), strict=True))
    num_found = sum(f1 > config.min_GT_probe_f1 for f1 in probe_f1.values())
    evaluated = num_found >= config.min_feats_for_eval
    mean_metrics, details = AbsorptionMeanMetrics(), []
    if evaluated:
        calculator = FeatureAbsorptionCalculator(
            model=truncated,  # type: ignore[arg-type]
            icl_word_list=words,
            max_icl_examples=MAX_ICL_EXAMPLES,
            base_template=config.prompt_template,
            answer_formatter=first_letter_formatter(),
            word_token_pos=config.prompt_token_pos,
            full_absorption_probe_cos_sim_threshold=FULL_ABSORPTION_PROBE_COS_THRESHOLD,
            absorption_fraction_probe_cos_sim_threshold=ABSORPTION_FRACTION_PROBE_COS_THRESHOLD,
            probe_projection_proportion_threshold=ABSORPTION_PROBE_PROJECTION_PROPORTION_THRESHOLD,
            absorption_fraction_max_absorbing_latents=ABSORPTION_FRACTION_MAX_ABSORBING_LATENTS,
            batch_size=config.llm_batch_size,
        )
        random.seed(config.random_seed)  # the in-context examples of each prompt are drawn from `random`
        raw_df = load_df_or_run(
            lambda: load_and_run_calculate_projections_and_cos_sims(
                truncated,  # type: ignore[arg-type]
                sae,
                calculator,
                metrics_df,
                sae_name=sae_name,
                layer=layer,
                probes_dir=probes_dir,
                sparse_probing_task_output_dir=sae_dir / SPARSE_PROBING_EXPERIMENT_NAME / sae_name,
                device=device,
            ),
            sae_dir / FEATURE_ABSORPTION_EXPERIMENT_NAME / f"layer_{layer}_{sae_name}.parquet",
            force=force_rerun,
        )
        mean_metrics, details = _aggregate(_aggregate_results_df(raw_df), probe_f1, config)
    status = (
        "evaluated"
        if evaluated
        else f"not evaluated: only {num_found} letters have a first-letter probe with F1 > "
        f"{config.min_GT_probe_f1} in {config.model_name} at {hook_name}; {config.min_feats_for_eval} are needed"
    )
    return AbsorptionEvalOutput(
        eval_config=config,
        **saebench_output_fields(sae_name, sae),
        eval_result_metrics=AbsorptionMetricCategories(
            mean=mean_metrics,
            first_letter_features=FirstLetterFeatureMetrics(
                num_letters_with_probe_feature=num_found,
                min_feats_for_eval=config.min_feats_for_eval,
                absorption_evaluated=evaluated,
                status=status,
            ),
        ),
        eval_result_details=details,
        eval_result_unstructured={"probe_f1_by_letter": probe_f1, "num_words": len(words)},
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
    """SAEBench-style entry: absorption of each `(name, SAE)`, one JSON per SAE in `output_path`.

    `model` (a `HookedTransformer`, or a `LazyModel` loaded only if needed) defaults to `config.model_name`
    loaded offline-aware; probes and per-SAE tables are cached under
    `cache_path` (default `<output_path>/cache`). Existing results are kept unless `force_rerun`.
    """
    lazy = LazyModel.of(model, config.model_name, config.llm_dtype, device)
    root = cache_path or str(Path(output_path) / "cache")

    def evaluate(sae_name: str, sae: SAE) -> AbsorptionEvalOutput:
        model = lazy.get()
        return evaluate_sae(model, sae, sae_name, resolve_config(config, model), root, device, force_rerun)

    return run_each_sae(selected_saes, device, output_path, force_rerun, "absorption", evaluate)
