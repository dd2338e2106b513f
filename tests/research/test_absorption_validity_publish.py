"""`research/absorption_validity_publish.py`: the validity README's sentences follow the rows they are built from."""

from __future__ import annotations

import string
from typing import Any

from research import absorption_validity_publish as publish
from sae_mask_plugin.evals.absorption.gate import AbsorptionGateConfig, LetterRecord, summarize

GATE = AbsorptionGateConfig(d_model=576, min_passing_letters=20)
BUDGET = {
    "min_probe_positive_words": GATE.min_probe_positive_words,
    "rows": [
        {"words_per_letter": 60, "num_words": 1560, "median_test_words": 13, "letters_with_min_test_words": 0,
         "llm_tokens_first_sae": 164_736},
        {"words_per_letter": 300, "num_words": 7227, "median_test_words": 58, "letters_with_min_test_words": 21,
         "llm_tokens_first_sae": 763_224},
    ],
}  # fmt: skip


def _row(words_with_enough: int, training_tokens: int, eval_seconds: float, k: int = 32) -> dict[str, Any]:
    """A raw row as `research/absorption_validity.py` writes it (block 6, 8,192 latents): every letter precise and
    aligned, the first `words_with_enough` letters with enough probe-positive words."""
    records = [
        LetterRecord(
            letter=letter,
            probe_f1=0.9,
            num_probe_positive_words=60 if i < words_with_enough else 10,
            main_latent_precision=0.8,
            main_latent_recall=0.5,
            main_latent_f1=0.6,
            main_latent_cos=0.5,
            main_latents_recall_on_probe_positive=0.5,
            absorption_fraction=0.1,
            full_absorption_rate=0.05,
            null_other_letter_absorption_fraction=0.9,
            random_sae_main_latent_f1=0.1,
        )
        for i, letter in enumerate(string.ascii_lowercase)
    ]
    summary = summarize(records, GATE).to_dict()
    letters = [
        {
            "letter": r.letter,
            "probe_f1": r.probe_f1,
            "num_probe_positive_words": r.num_probe_positive_words,
            "by_variant": {
                "saebench": {
                    "absorption_fraction": 0.1,
                    "null_other_letter_absorption_fraction": 0.9,
                    "random_sae_absorption_fraction": 0.2,
                }
            },
        }
        for r in records
    ]
    measurable = summary["letters_passing"] >= GATE.min_passing_letters
    return {
        "run": f"L6-w8192-k{k}-t{training_tokens}",
        "layer": 6,
        "d_sae": 8192,
        "k": k,
        "training_tokens": training_tokens,
        "words_per_letter": 300,
        "llm_dtype": "float32",
        "cached_tokens": 262_144,
        "num_words": 7227,
        "l0": 32.0,
        "explained_variance": 0.83,
        "eval_wall_seconds": eval_seconds,
        "absorption_gate": {
            "gate": {
                "min_probe_positive_words": GATE.min_probe_positive_words,
                "min_probe_f1": GATE.min_probe_f1,
            },
            "headline_variant": "scaled",
            "letters": letters,
            "summary": {"scaled": summary, "saebench": summary},
        },
        "metrics": {
            "gate": {
                "absorption_letters_needed": GATE.min_passing_letters,
                "mean_main_latent_precision": summary["mean_main_latent_precision"],
                "mean_main_latent_recall": summary["mean_main_latent_recall"],
                "gated_absorption_fraction_score": summary["headline_absorption_fraction"],
                "gated_k1_full_absorption_score": 0.04 if measurable else None,
                "random_sae_absorption_fraction_score": 0.2,
                "random_sae_k1_full_absorption_score": 0.6,
            },
            "first_letter_features": {"num_letters_with_probe_feature": 26},
            "mean": {"mean_absorption_fraction_score": 0.1},
        },
    }


def test_too_few_words_rules_out_a_headline_whatever_the_latents() -> None:
    rows = {"a": _row(16, 88_064, 900.0), "b": _row(16, 264_192, 30.0)}
    results = publish.build(rows)
    text = publish.readme(results, GATE.min_passing_letters, BUDGET)
    assert results["measurable_runs"] == []
    assert "With 300 words per letter, 16 letters reach 50 probe-positive test words" in text
    assert (
        "at most 16 letters reach the gate's word minimum, so no SAE can reach the 20 passing letters" in text
    )
    assert "L6 (300 words) 900 s; further SAEs 30–30 s" in text


def test_a_measurable_row_picks_the_setting_and_shows_its_headline() -> None:
    rows = {"a": _row(16, 88_064, 900.0), "b": _row(24, 264_192, 30.0)}
    results = publish.build(rows)
    first_pass = publish.build({"old": _row(0, 98_304, 50.0)})
    text = publish.readme(results, GATE.min_passing_letters, BUDGET, first_pass=first_pass)
    assert results["measurable_runs"] == ["L6-w8192-k32-t264192"]
    assert (
        "Absorption is measurable at L6-w8192-k32-t264192 with 300 words per letter (24 letters pass)" in text
    )
    assert "| 0.040 | 0.600 |" in text  # the gated k = 1 full-absorption rate and its random-SAE null
    assert "1 TopK SAEs at block 3 trained on up to 98,304 tokens" in text


def test_one_factor_series_hold_the_other_factors_fixed() -> None:
    """k varies over snapshots of equal training tokens only (here the final ones, where all three k exist);
    training tokens vary within one SAE; a factor with one value is no series."""
    rows = {
        "k16": _row(10, 264_192, 30.0, k=16),
        "k32-early": _row(5, 90_112, 30.0),
        "k32": _row(21, 264_192, 30.0),
        "k64": _row(18, 264_192, 30.0, k=64),
    }
    results = publish.build(rows)
    series = {group["factor"]: group for group in results["series"][300]}
    assert set(series) == {"k", "training_tokens"}
    assert series["k"]["values"] == [16, 32, 64] and series["k"]["letters_passing"] == [10, 21, 18]
    assert series["k"]["fixed"] == {
        "layer": 6,
        "d_sae": 8192,
        "architecture": "topk",
        "seed": 0,
        "dead_feature_window": None,
    }
    assert series["training_tokens"]["values"] == [90_112, 264_192]
    assert series["training_tokens"]["letters_passing"] == [5, 21]
    text = publish.readme(results, GATE.min_passing_letters, BUDGET)
    assert (
        "- By k (L0) (L6 w8192 at 264,192 tokens, 300 words; 16 → 32 → 64): letters passing 10 → 21 → 18;"
        in text
    )
    assert "- By training tokens (L6 w8192 k32, 300 words; 90,112 → 264,192): letters passing 5 → 21;" in text


def test_published_rows_are_kept_unless_re_run() -> None:
    """Rows of an earlier results.json stay in the table; a raw row of the same run and word list replaces one."""
    earlier = publish.build({"k16": _row(10, 264_192, 900.0, k=16), "k32": _row(5, 264_192, 30.0)})
    results = publish.build({"k32": _row(21, 264_192, 40.0)}, kept=earlier["rows"])
    by_run = {r["run"]: r for r in results["rows"]}
    assert len(results["rows"]) == 2
    assert by_run["L6-w8192-k16-t264192"]["letters_passing"] == 10
    assert by_run["L6-w8192-k32-t264192"]["letters_passing"] == 21
    assert by_run["L6-w8192-k32-t264192"]["eval_wall_seconds"] == 40.0


def _seeded(words_with_enough: int, training_tokens: int, seed: int) -> dict[str, Any]:
    """A row of the low-L0 search: TopK k 8 with AuxK's window at 50 steps, seed `seed`."""
    row = _row(words_with_enough, training_tokens, 30.0, k=8)
    suffix = f"-s{seed}" if seed else ""
    return {
        **row,
        "run": f"L6-w8192-k8{suffix}-t{training_tokens}",
        "architecture": "topk",
        "seed": seed,
        "dead_feature_window": 50,
        "sae_step": "sparse",
    }


def test_settings_are_read_across_seeds_and_snapshots() -> None:
    """Seed 0 passes letters a-v (22), seed 1 a-t (20), seed 2 a-r (18) at the end; seed 0's early snapshot a-p."""
    rows = {
        "s0-early": _seeded(16, 350_208, 0),
        "s0": _seeded(22, 1_048_576, 0),
        "s1": _seeded(20, 1_048_576, 1),
        "s2": _seeded(18, 1_048_576, 2),
    }
    results = publish.build(rows)
    (summary,) = publish.across_seeds(results["rows"], GATE.min_passing_letters)
    assert summary["setting"] == "L6 w8192 k8 auxk50"
    assert summary["letters_passing"] == [22, 20, 18]
    assert summary["seeds_reaching_needed"] == 2
    assert summary["letters_every_seed"] == "abcdefghijklmnopqr"
    assert summary["letters_all_but_one_seed"] == "abcdefghijklmnopqrst"
    assert summary["letters_every_snapshot"] == {
        0: "abcdefghijklmnop",
        1: "abcdefghijklmnopqrst",
        2: "abcdefghijklmnopqr",
    }
    text = publish.readme(results, GATE.min_passing_letters, BUDGET)
    assert (
        "| L6 w8192 k8 auxk50 | 300 | 3 | 1,048,576 | 22 / 20 / 18 | 2 of 3 | abcdefghijklmnopqr (18) |"
        in text
    )
    assert "| L6 w8192 k8 s1 auxk50 | 300 | 1048576 |" in text  # the per-SAE table names the seed


def test_a_folder_intro_opens_the_readme() -> None:
    results = publish.build({"a": _seeded(18, 1_048_576, 0)})
    text = publish.readme(results, GATE.min_passing_letters, BUDGET, intro="**What these rows are for.**")
    assert text.splitlines()[:3] == [
        "# Where first-letter absorption carries signal on SmolLM2-135M",
        "",
        "**What these rows are for.**",
    ]


def test_the_core_evals_ev_of_the_snapshots_is_shown_with_its_gap_to_the_rows() -> None:
    results = publish.build({"a": _seeded(18, 1_048_576, 0)})
    core_ev = {
        "snapshots": {
            "L6-w8192-k4:1048576": {"core_ev": 0.78, "held_out_ev": 0.85, "l0": 4.0},
            "L6-w8192-k8:1048576": {"core_ev": 0.79, "held_out_ev": 0.84, "l0": 8.0},
            "L6-w8192-k8-s1:1048576": {"core_ev": 0.785, "held_out_ev": None, "l0": 8.0},
        }
    }
    text = publish.readme(results, GATE.min_passing_letters, BUDGET, core_ev=core_ev)
    section = text[text.index("## The core eval's EV of these SAEs") :]
    assert "reads 0.050–0.070 lower on the same snapshots" in section
    assert "| L6-w8192-k4:1048576 | 0.7800 | 0.850 | 4.0 |" in section
    assert "| L6-w8192-k8-s1:1048576 | 0.7850 | — | 8.0 |" in section
    assert "## The core eval's EV" not in publish.readme(results, GATE.min_passing_letters, BUDGET)


def test_the_arm_setting_is_read_across_seeds_not_off_one_passing_snapshot() -> None:
    rows = {
        "s0": _seeded(22, 1_048_576, 0),  # one seed passes (22 letters with enough words, all precise)
        "s1": _seeded(18, 1_048_576, 1),
        "s2": _seeded(16, 1_048_576, 2),
    }
    text = publish.readme(publish.build(rows), GATE.min_passing_letters, BUDGET)
    assert "The study's setting" not in text  # one SAE passing decides nothing
    assert (
        "No setting with three or more seeds reaches 20 letters in most seeds (L6 w8192 k8 auxk50 1 of 3); the "
        "fixed-letter design applies: L6 w8192 k8 auxk50 has 18 letters passing in all but one of its seeds "
        "(16 in every seed)." in text
    )
    rows["s2"] = _seeded(21, 1_048_576, 2)
    text = publish.readme(publish.build(rows), GATE.min_passing_letters, BUDGET)
    assert (
        "L6 w8192 k8 auxk50 reaches 20 letters in 2 of 3 seeds: the gate passes there in most seeds." in text
    )
