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
