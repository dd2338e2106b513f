"""How many words per letter the absorption eval needs on the embedded default, without running the LLM.

For each word-list size, SAEBench's own probe split (`create_dataset_probe_training`, seeded as the eval seeds
it) gives the test words per letter: an upper bound on the probe-positive words a letter's score averages over,
so the number of letters with at least the gate's minimum is an upper bound on the letters that can pass.
The prompt length gives the LLM tokens the eval's first SAE costs per hook (probe data for every word, plus
absorption prompts for the test words). Writes `docs/absorption_validity/word_budget.json`.

    python -m research.absorption_validity_words
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

from sae_bench.evals.absorption.probing import create_dataset_probe_training
from sae_bench.evals.absorption.prompting import first_letter_formatter
from sae_bench.evals.absorption.vocab import LETTERS

from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.evals.absorption.eval_config import AbsorptionEvalConfig
from sae_mask_plugin.evals.absorption.main import first_letter_word_list
from sae_mask_plugin.files import write_json_atomic
from sae_mask_plugin.training.preflight import load_tokenizer

SIZES = (60, 100, 200, 300, 400, 600, 1000, None)


def word_budget(words_per_letter: int | None, tokenizer, config: AbsorptionEvalConfig) -> dict:
    """Test words per letter under SAEBench's split, letters reaching the gate's minimum, and LLM tokens."""
    words = first_letter_word_list(tokenizer, words_per_letter, config.random_seed)
    random.seed(config.random_seed)  # as the eval seeds SAEBench's split
    train, test = create_dataset_probe_training(
        vocab=words,
        formatter=first_letter_formatter(),
        num_prompts_per_token=1,
        base_template=config.prompt_template,
    )
    per_letter = Counter(LETTERS[answer] for _, answer in test)
    prompt_tokens = len(tokenizer(train[0][0].base)["input_ids"]) + 1  # + BOS
    return {
        "words_per_letter": words_per_letter,
        "num_words": len(words),
        "test_words_per_letter": {letter: per_letter.get(letter, 0) for letter in LETTERS},
        "median_test_words": sorted(per_letter.get(letter, 0) for letter in LETTERS)[len(LETTERS) // 2],
        "letters_with_min_test_words": sum(
            per_letter.get(letter, 0) >= config.min_probe_positive_words for letter in LETTERS
        ),
        "prompt_tokens": prompt_tokens,
        "llm_tokens_first_sae": prompt_tokens * (len(train) + len(test)) + prompt_tokens * len(test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/absorption_validity/word_budget.json"))
    args = parser.parse_args()
    tokenizer = load_tokenizer(EMBEDDED_MODEL_NAME)
    config = AbsorptionEvalConfig(model_name=EMBEDDED_MODEL_NAME)
    rows = [word_budget(size, tokenizer, config) for size in SIZES]
    write_json_atomic(args.out, {"min_probe_positive_words": config.min_probe_positive_words, "rows": rows})
    for row in rows:
        print(
            f"{row['words_per_letter']}: {row['num_words']} words, median test words {row['median_test_words']}, "
            f"{row['letters_with_min_test_words']} letters >= {config.min_probe_positive_words}, "
            f"{row['llm_tokens_first_sae']} LLM tokens"
        )


if __name__ == "__main__":
    main()
