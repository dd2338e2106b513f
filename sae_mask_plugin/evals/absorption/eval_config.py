"""Configuration of the first-letter absorption eval: SAEBench's config plus an optional restricted word list."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass
from sae_bench.evals.absorption.eval_config import AbsorptionEvalConfig as SaeBenchAbsorptionEvalConfig


@dataclass
class AbsorptionEvalConfig(SaeBenchAbsorptionEvalConfig):
    prompt_token_pos: int | None = Field(
        default=None,
        title="Prompt Token Position",
        description="Position of the word token in the prompt, counted from the end. None: computed from the "
        "model's tokenizer for `prompt_template` (the resolved value is stored with the results).",
    )
    words_per_letter: int | None = Field(
        default=None,
        title="Words per Letter",
        description="None: SAEBench's full list of alphabetic vocabulary tokens. Otherwise a letter-stratified "
        "sample of at most this many tokens per first letter (whole words with a leading space preferred), "
        "drawn with `random_seed`; used for the probe, the k-sparse probes and the absorption prompts alike.",
    )
    min_probe_positive_words: int = Field(
        default=50,
        ge=1,
        title="Minimum Probe-Positive Words",
        description="Signal gate: a letter counts only when at least this many of its test words are called "
        "positive by the LLM probe (the words its absorption score averages over).",
    )
    min_main_latent_precision: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        title="Minimum Main-Latent Precision",
        description="Signal gate: the precision of the letter's main latent (the k = 1 sparse probe) on the test "
        "words; chance is about 1/26.",
    )
    main_latent_cos_at_reference: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        title="Main-Latent Cosine at d_model 2304",
        description="Signal gate: the main latent's decoder cosine with the probe must reach this value scaled "
        "by sqrt(2304 / d_model) (the SD of a random cosine scales as 1/sqrt(d_model)). The letter gate reuses "
        "`min_GT_probe_f1` for the probe's F1 and `min_feats_for_eval` for the letters an SAE's headline needs.",
    )


def cpu_preset(model_name: str) -> AbsorptionEvalConfig:
    """The CPU preset for a small model (the embedded default): a letter-stratified list of 60 words per letter
    (1,560 words, whole words preferred). On SmolLM2-135M layer 12 it gives 23 letters with probe F1 > 0.6,
    above SAEBench's default `min_feats_for_eval` of 20, which stays unchanged."""
    return AbsorptionEvalConfig(
        model_name=model_name,
        words_per_letter=60,
        llm_batch_size=32,
        precalc_k_sparse_probe_sae_acts=True,
    )
