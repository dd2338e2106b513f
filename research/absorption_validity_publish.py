"""Publish the absorption validity study: `docs/absorption_validity/results.json` and its README, every number in
the README's sentences and table read from the rows `research/absorption_validity.py` wrote.

    python -m research.absorption_validity_publish --rows outputs/absorption_validity/rows.json

`--keep-published` adds the new rows to those already in `docs/absorption_validity/results.json` (a row re-run
replaces its published one), so the grid can grow one hook at a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sae_mask_plugin.evals.absorption.gate import REASON_FEW_WORDS
from sae_mask_plugin.files import write_json_atomic, write_text_atomic

DOCS = Path("docs/absorption_validity")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
INTRO_FILE = "intro.txt"
CORE_EV_FILE = "core_ev.json"
"""A paragraph a docs folder may hold, placed under its README's title (what that folder's rows are for)."""


def _ungated_mean(letters: list[dict[str, Any]], field: str, min_probe_f1: float) -> float | None:
    """`field` in SAEBench's cosine variant averaged as SAEBench averages: letters with probe F1 > the minimum."""
    values = [
        e["by_variant"]["saebench"][field]
        for e in letters
        if e["probe_f1"] > min_probe_f1 and e["by_variant"]["saebench"][field] is not None
    ]
    return statistics.mean(values) if values else None


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarize_row(row: dict[str, Any]) -> dict[str, Any]:
    """One SAE x word list: the gate's outcome in the headline variant and what limited it."""
    gate_json = row["absorption_gate"]
    min_probe_f1 = gate_json["gate"]["min_probe_f1"]
    variant = gate_json["headline_variant"]
    summary = gate_json["summary"][variant]
    gate = row["metrics"]["gate"]
    letters = gate_json["letters"]
    return {
        "run": row["run"],
        "architecture": row.get("architecture", "topk"),
        "seed": row.get("seed", 0),
        "dead_feature_window": row.get("dead_feature_window"),
        "sae_step": row.get("sae_step", "saelens"),
        "passing_letters": "".join(summary["passing_letters"]),
        "llm_dtype": row["llm_dtype"],
        "cached_tokens": row["cached_tokens"],
        "layer": row["layer"],
        "d_sae": row["d_sae"],
        "k": row["k"],
        "training_tokens": row["training_tokens"],
        "words_per_letter": row["words_per_letter"],
        "num_words": row["num_words"],
        "l0": row["l0"],
        "explained_variance": row["explained_variance"],
        "letters_passing": summary["letters_passing"],
        "letters_passing_but_word_count": sum(
            reasons == [REASON_FEW_WORDS] for reasons in summary["reasons_by_letter"].values()
        ),
        "letters_passing_saebench_cosines": gate_json["summary"]["saebench"]["letters_passing"],
        "letters_with_probe": row["metrics"]["first_letter_features"]["num_letters_with_probe_feature"],
        "median_probe_positive_words": statistics.median(e["num_probe_positive_words"] for e in letters),
        "letters_with_min_probe_positive_words": sum(
            e["num_probe_positive_words"] >= gate_json["gate"]["min_probe_positive_words"] for e in letters
        ),
        "mean_main_latent_precision": gate["mean_main_latent_precision"],
        "mean_main_latent_recall": gate["mean_main_latent_recall"],
        "gated_absorption": gate["gated_absorption_fraction_score"],
        "gated_k1_full_absorption": gate["gated_k1_full_absorption_score"],
        "random_sae_k1_full_absorption": gate["random_sae_k1_full_absorption_score"],
        "saebench_absorption": row["metrics"]["mean"]["mean_absorption_fraction_score"],
        "random_sae_absorption": gate["random_sae_absorption_fraction_score"],
        "random_sae_absorption_ungated": _ungated_mean(
            letters, "random_sae_absorption_fraction", min_probe_f1
        ),
        "other_letter_null_ungated": _ungated_mean(
            letters, "null_other_letter_absorption_fraction", min_probe_f1
        ),
        "saebench_absorption_recomputed": _ungated_mean(letters, "absorption_fraction", min_probe_f1),
        "margin_below_other_letter_null": _difference(
            _ungated_mean(letters, "null_other_letter_absorption_fraction", min_probe_f1),
            _ungated_mean(letters, "absorption_fraction", min_probe_f1),
        ),
        "letters_failing_by_reason": summary["letters_failing_by_reason"],
        "eval_wall_seconds": row["eval_wall_seconds"],
    }


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _gated(value: float | str | None) -> str:
    """A gated score: its value, "not measurable" (too few passing letters) or a label."""
    if value is None:
        return "not measurable"
    return value if isinstance(value, str) else _number(value)


SERIES_FIELDS = (
    ("letters_passing", "letters passing", 0),
    ("mean_main_latent_precision", "main-latent precision", 3),
    ("mean_main_latent_recall", "main-latent recall", 3),
    ("explained_variance", "EV", 3),
)
"""What each one-factor series reports: (row field, label, digits)."""

SETTING = ("architecture", "seed", "dead_feature_window")
"""Fields every series holds fixed beside its factors (rows written before them: TopK, seed 0, SAELens's window)."""
FACTORS = {
    "k": ("layer", "d_sae", "training_tokens", *SETTING),
    "d_sae": ("layer", "k", "training_tokens", *SETTING),
    "layer": ("d_sae", "k", "training_tokens", *SETTING),
    "training_tokens": ("layer", "d_sae", "k", *SETTING),
}
"""Each factor of the grid and the factors held fixed while it varies."""


def _setting(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(field) for field in SETTING)


def row_label(row: dict[str, Any]) -> str:
    """`L6 w8192 k8`, with the architecture (other than TopK), seed (other than 0), AuxK window and dtype."""
    label = f"L{row['layer']} w{row['d_sae']} k{row['k']}"
    if row.get("architecture", "topk") != "topk":
        label += f" {row['architecture']}"
    if row.get("seed", 0):
        label += f" s{row['seed']}"
    if row.get("dead_feature_window") is not None:
        label += f" auxk{row['dead_feature_window']}"
    return label + (" (bf16)" if row.get("llm_dtype") == "bfloat16" else "")


def one_factor_series(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each factor, every group of `rows` (one word list) that varies it with the others fixed: its values
    and the `SERIES_FIELDS` at each. Factors other than training tokens compare snapshots of equal training
    tokens, the most tokens at which the factor takes two or more values."""
    series = []
    for factor, fixed in FACTORS.items():
        held = [f for f in fixed if f != "training_tokens"]
        groups: dict[tuple[int, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r.get(f) for f in held), []).append(r)
        for key, members in sorted(groups.items(), key=lambda item: str(item[0])):
            if factor != "training_tokens":
                by_tokens: dict[int, list[dict[str, Any]]] = {}
                for m in members:
                    by_tokens.setdefault(m["training_tokens"], []).append(m)
                varied = [t for t, ms in by_tokens.items() if len({m[factor] for m in ms}) >= 2]
                if not varied:
                    continue
                members = by_tokens[max(varied)]
            if len({m[factor] for m in members}) < 2:
                continue
            members = sorted(members, key=lambda m: m[factor])
            series.append(
                {
                    "factor": factor,
                    "fixed": dict(zip(held, key, strict=True)),
                    "training_tokens": None if factor == "training_tokens" else members[0]["training_tokens"],
                    "values": [m[factor] for m in members],
                    **{field: [m[field] for m in members] for field, _, _ in SERIES_FIELDS},
                }
            )
    return series


def across_seeds(table: list[dict[str, Any]], needed: int) -> list[dict[str, Any]]:
    """Per setting (block, width, k, architecture, AuxK window, word list), its SAEs' final snapshots over seeds:
    letters passing per seed, how many seeds reach `needed`, the letters passing in every seed and in all but one,
    and the letters passing in every snapshot of each seed (the gate's stability within one SAE)."""
    settings: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in table:
        key = (
            r["layer"],
            r["d_sae"],
            r["k"],
            r["architecture"],
            r["dead_feature_window"],
            r["words_per_letter"],
        )
        settings.setdefault(key, []).append(r)
    summaries = []
    for key, rows in settings.items():
        words = key[-1]
        by_seed: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            by_seed.setdefault(r["seed"], []).append(r)
        finals = {
            seed: max(snapshots, key=lambda r: r["training_tokens"]) for seed, snapshots in by_seed.items()
        }
        counts = {letter: sum(letter in r["passing_letters"] for r in finals.values()) for letter in ALPHABET}
        n = len(finals)
        summaries.append(
            {
                "setting": row_label({**rows[0], "seed": 0, "llm_dtype": None}),
                "words_per_letter": words,
                "seeds": sorted(finals),
                "training_tokens": sorted({r["training_tokens"] for r in finals.values()}),
                "letters_passing": [finals[seed]["letters_passing"] for seed in sorted(finals)],
                "seeds_reaching_needed": sum(r["letters_passing"] >= needed for r in finals.values()),
                "letters_every_seed": "".join(letter for letter, c in counts.items() if c == n),
                "letters_all_but_one_seed": "".join(
                    letter for letter, c in counts.items() if c >= max(1, n - 1)
                ),
                "letters_every_snapshot": {
                    seed: "".join(
                        letter
                        for letter in ALPHABET
                        if all(letter in r["passing_letters"] for r in by_seed[seed])
                    )
                    for seed in sorted(by_seed)
                },
            }
        )
    return summaries


def across_seeds_lines(summaries: list[dict[str, Any]], needed: int) -> list[str]:
    """The "Across seeds" section: settings with a `passing_letters` record (rows from the low-L0 search on)."""
    if not summaries:
        return []
    lines = [
        "## Across seeds and snapshots",
        "",
        f"Final snapshots per seed; a setting passes the gate where most seeds reach {needed} letters. A fixed "
        "letter set for a paired comparison takes the letters passing in all but one of the baseline seeds "
        "(`absorption_letter_set: {min_baseline_seeds: n - 1}`); the letters passing in every snapshot of one SAE "
        "show how much the set moves during training.",
        "",
        "| setting | words/letter | seeds | tokens | letters passing per seed | seeds reaching "
        f"{needed} | letters in every seed | in all but one seed | in every snapshot, per seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summaries:
        snapshots = "; ".join(
            f"s{seed}: {letters or '—'}" for seed, letters in row["letters_every_snapshot"].items()
        )
        lines.append(
            f"| {row['setting']} | {row['words_per_letter']} | {len(row['seeds'])} | "
            f"{' / '.join(f'{t:,}' for t in row['training_tokens'])} | "
            f"{' / '.join(map(str, row['letters_passing']))} | {row['seeds_reaching_needed']} of {len(row['seeds'])} | "
            f"{row['letters_every_seed'] or '—'} ({len(row['letters_every_seed'])}) | "
            f"{row['letters_all_but_one_seed'] or '—'} ({len(row['letters_all_but_one_seed'])}) | {snapshots} |"
        )
    return [*lines, ""]


def build(rows: dict[str, dict[str, Any]], kept: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The published results of raw `rows`, plus `kept` rows already summarized (an earlier `results.json`) that
    the raw rows do not re-run (same run and word list)."""
    fresh = [summarize_row(row) for row in rows.values()]
    rerun = {(r["run"], r["words_per_letter"]) for r in fresh}
    table = sorted(
        [*fresh, *(r for r in kept if (r["run"], r["words_per_letter"]) not in rerun)],
        key=lambda r: (
            r["layer"],
            r["d_sae"],
            r["k"],
            str(_setting(r)),
            r["training_tokens"],
            r["words_per_letter"],
        ),
    )
    series = {
        words: one_factor_series([r for r in table if r["words_per_letter"] == words])
        for words in sorted({r["words_per_letter"] for r in table})
    }
    best = max(table, key=lambda r: (r["letters_passing"], r["mean_main_latent_precision"] or 0))
    measurable = [r for r in table if r["gated_absorption"] is not None]
    return {"rows": table, "series": series, "best": best, "measurable_runs": [r["run"] for r in measurable]}


def series_lines(series: dict[int, list[dict[str, Any]]]) -> list[str]:
    """One line per one-factor series: how letters passing and the main latents change along it."""
    names = {"k": "k (L0)", "d_sae": "width", "layer": "block", "training_tokens": "training tokens"}
    fixed_names = {"layer": "L", "d_sae": "w", "k": "k", "seed": "s", "dead_feature_window": "auxk"}
    lines = []
    for words, groups in series.items():
        for group in groups:
            fixed = " ".join(
                f"{fixed_names.get(f, '')}{v}"
                for f, v in group["fixed"].items()
                if v is not None and (f, v) not in {("architecture", "topk"), ("seed", 0)}
            )
            if group["training_tokens"] is not None:
                fixed += f" at {group['training_tokens']:,} tokens"
            changes = "; ".join(
                f"{label} " + " → ".join(_number(v, digits) for v in group[field])
                for field, label, digits in SERIES_FIELDS
            )
            values = " → ".join(f"{v:,}" for v in group["values"])
            lines.append(f"- By {names[group['factor']]} ({fixed}, {words} words; {values}): {changes}.")
    return lines


def word_budget_lines(budget: dict[str, Any]) -> list[str]:
    """The word-budget table and its reading, from `word_budget.json` (`research/absorption_validity_words.py`)."""
    minimum = budget["min_probe_positive_words"]
    lines = [
        "## Words per letter: what the gate's word minimum needs (no LLM)",
        "",
        f"SAEBench's probe split (80 % train, seeded as the eval) of the letter-stratified list: test words per "
        f"letter bound the probe-positive words a letter's score averages over, so letters with >= {minimum} "
        "test words bound the letters that can pass. LLM tokens: probe prompts for every word plus absorption "
        "prompts for the test words (a first SAE on a hook; further SAEs reuse them).",
        "",
        f"| words per letter | words | median test words per letter | letters with >= {minimum} test words | "
        "LLM tokens, first SAE |",
        "|---|---|---|---|---|",
    ]
    for row in budget["rows"]:
        size = "all" if row["words_per_letter"] is None else row["words_per_letter"]
        lines.append(
            f"| {size} | {row['num_words']} | {row['median_test_words']} | {row['letters_with_min_test_words']} | "
            f"{row['llm_tokens_first_sae']:,} |"
        )
    preset = next(row for row in budget["rows"] if row["words_per_letter"] == 60)
    enough = [row for row in budget["rows"] if row["letters_with_min_test_words"] >= 20]
    most = max(row["letters_with_min_test_words"] for row in budget["rows"])
    lines += [
        "",
        f"The CPU preset's 60 words per letter give a median of {preset['median_test_words']} test words per "
        f"letter and {preset['letters_with_min_test_words']} letters with {minimum}: the gate can never pass "
        f"there. The smallest list with 20 letters possible is {enough[0]['words_per_letter']} words per letter "
        f"({enough[0]['llm_tokens_first_sae']:,} LLM tokens for a first SAE); no list gives more than {most} "
        "letters (the rarest first letters have too few alphabetic tokens in SmolLM2's vocabulary).",
        "",
    ]
    return lines


def seed_choice_lines(summaries: list[dict[str, Any]], needed: int) -> list[str]:
    """The arm's setting, read off the across-seeds summaries: a setting whose seeds mostly reach `needed` letters,
    else the fixed-letter design with the setting whose all-but-one-seed letter set is largest (10 letters at
    least), else neither."""
    lines = ["## The arm's setting (across seeds)", ""]
    seeded = [row for row in summaries if len(row["seeds"]) >= 3]
    passing = [row for row in seeded if row["seeds_reaching_needed"] > len(row["seeds"]) / 2]
    if passing:
        best = max(passing, key=lambda row: row["seeds_reaching_needed"] / len(row["seeds"]))
        return [
            *lines,
            f"{best['setting']} reaches {needed} letters in {best['seeds_reaching_needed']} of {len(best['seeds'])} "
            "seeds: the gate passes there in most seeds.",
            "",
        ]
    if not seeded:
        return [*lines, "No setting has three seeds yet: the choice waits for them.", ""]
    fixed = max(seeded, key=lambda row: len(row["letters_all_but_one_seed"]))
    reach = ", ".join(
        f"{row['setting']} {row['seeds_reaching_needed']} of {len(row['seeds'])}" for row in seeded
    )
    if len(fixed["letters_all_but_one_seed"]) >= 10:
        choice = (
            f"the fixed-letter design applies: {fixed['setting']} has {len(fixed['letters_all_but_one_seed'])} letters "
            f"passing in all but one of its seeds ({len(fixed['letters_every_seed'])} in every seed)"
        )
    else:
        choice = "no setting has 10 letters passing in all but one of its seeds either"
    return [
        *lines,
        f"No setting with three or more seeds reaches {needed} letters in most seeds ({reach}); {choice}.",
        "",
    ]


def choice_lines(results: dict[str, Any], budget: dict[str, Any], needed: int) -> list[str]:
    """The study's setting, read off the table and the word budget."""
    enough = next(row for row in budget["rows"] if row["letters_with_min_test_words"] >= needed)
    lines = ["## The study's setting", ""]
    if results["measurable_runs"]:
        best = results["best"]
        lines.append(
            f"Absorption is measurable at {best['run']} with {best['words_per_letter']} words per letter "
            f"({best['letters_passing']} letters pass): the study's absorption uses that hook, width and word list."
        )
    else:
        tried = sorted({r["words_per_letter"] for r in results["rows"]})
        lines.append(
            f"No SAE measured here is measurable (word lists tried: {', '.join(map(str, tried))} per letter)."
        )
        reachable = []
        for words, counts in sorted(letters_with_words(results["rows"]).items()):
            if max(counts) >= needed:
                reachable.append(words)
                continue
            lines.append(
                f"With {words} words per letter at most {max(counts)} letters reach the gate's word minimum, so no "
                f"SAE can reach the {needed} passing letters there, whatever its latents."
            )
        if reachable:
            best = results["best"]
            lines.append(
                f"The study's absorption needs at least {reachable[0]} words per letter; until a row there shows "
                f"{needed} passing letters, the study reports absorption as not measurable. The setting closest to "
                f"measurable, and so absorption's pick for the study: block {best['layer']}, width {best['d_sae']:,}, "
                f"k {best['k']}, {best['words_per_letter']} words per letter ({best['letters_passing']} letters pass, "
                f"main-latent precision {_number(best['mean_main_latent_precision'])})."
            )
        else:
            lines.append(
                f"The word budget rules out fewer than {enough['words_per_letter']} words per letter and no list tried "
                f"gives {needed} letters enough probe-positive words; until one does and a row shows {needed} "
                "passing letters, the study reports absorption as not measurable."
            )
    return [*lines, ""]


def table_lines(table: list[dict[str, Any]]) -> list[str]:
    """The per-SAE table: one row per SAE snapshot and word list."""
    lines = [
        "| SAE | words/letter | tokens | L0 | EV | letters with probe | median probe-positive test words | "
        "letters passing (scaled / SAEBench cos) | failing only on word count | main-latent precision | "
        "main-latent recall | k = 1 full absorption gated | random SAE k = 1 | absorption fraction gated | "
        "random SAE gated | SAEBench ungated | random SAE ungated | other-letter null ungated | eval s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {row_label(r)} | {r['words_per_letter']} | {r['training_tokens']} | "
            f"{r['l0']:.1f} | {r['explained_variance']:.3f} | {r['letters_with_probe']} | "
            f"{r['median_probe_positive_words']:g} | {r['letters_passing']} / {r['letters_passing_saebench_cosines']} | "
            f"{r['letters_passing_but_word_count']} | "
            f"{_number(r['mean_main_latent_precision'])} | {_number(r['mean_main_latent_recall'])} | "
            f"{_gated(r.get('gated_k1_full_absorption', 'not computed'))} | "
            f"{_number(r.get('random_sae_k1_full_absorption'))} | {_gated(r['gated_absorption'])} | "
            f"{_number(r['random_sae_absorption'])} | {_number(r['saebench_absorption'])} | "
            f"{_number(r['random_sae_absorption_ungated'])} | {_number(r['other_letter_null_ungated'])} | "
            f"{r['eval_wall_seconds']:.0f} |"
        )
    return lines


def _span_of(values: list[int]) -> str:
    return str(values[0]) if min(values) == max(values) else f"{min(values)}–{max(values)}"


def letters_with_words(table: list[dict[str, Any]]) -> dict[int, list[int]]:
    """Per word list, the letters of each SAE with enough probe-positive test words for the gate."""
    counts: dict[int, list[int]] = {}
    for r in table:
        counts.setdefault(r["words_per_letter"], []).append(r["letters_with_min_probe_positive_words"])
    return counts


def eval_seconds(table: list[dict[str, Any]]) -> tuple[dict[str, float], list[float]]:
    """Eval wall times: the first SAE of each hook and word list (the longest: it builds the LLM-side caches),
    and those of the further SAEs."""
    groups: dict[str, list[float]] = {}
    for r in table:
        groups.setdefault(f"L{r['layer']} ({r['words_per_letter']} words)", []).append(r["eval_wall_seconds"])
    first = {hook: max(seconds) for hook, seconds in groups.items()}
    further = [s for seconds in groups.values() for s in sorted(seconds)[:-1]]
    return first, further


def first_pass_lines(first_pass: dict[str, Any]) -> list[str]:
    """The first pass's table (`first_pass.json`, kept as published): small SAEs, the CPU preset's word list."""
    rows = first_pass["rows"]
    return [
        "## First pass (kept for reference)",
        "",
        f"{len(rows)} TopK SAEs at block 3 trained on up to {max(r['training_tokens'] for r in rows):,} tokens "
        f"(SmolLM2 in bfloat16, emulated on this CPU), evaluated with the CPU preset's 60 words per letter: {len(first_pass['measurable_runs'])} "
        "measurable. The word budget above explains why no SAE could pass there.",
        "",
        *table_lines(rows),
        "",
    ]


def core_ev_lines(core_ev: dict[str, Any]) -> list[str]:
    """The core eval's EV of some of the rows' snapshots beside the rows' own (`research.absorption_arm_plateau`'s
    `core_ev.json`): the rows read EV on held-out cached activations of the training corpus, the core eval on its
    own held-out texts, so a training gate on the core eval needs the core eval's plateau."""
    pairs = list(core_ev["snapshots"].items())
    gaps = [v["held_out_ev"] - v["core_ev"] for _, v in pairs if v.get("held_out_ev") is not None]
    lines = [
        "## The core eval's EV of these SAEs",
        "",
        "The EV column above is read on held-out cached activations of the training corpus; the core eval (the "
        "study's and the arm's, on its own held-out texts, 104 x 8 windows) reads "
        + (f"{min(gaps):.3f}–{max(gaps):.3f} lower on the same snapshots" if gaps else "its own figure")
        + ", so the arm's training gate takes its plateau from the core eval (`core_ev.json`, "
        "`research/absorption_arm_plateau.py`).",
        "",
        "| snapshot | core eval EV | EV above | L0 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {spec} | {v['core_ev']:.4f} | {_number(v.get('held_out_ev'))} | {v['l0']:.1f} |"
        for spec, v in pairs
    ]
    return [*lines, ""]


def readme(
    results: dict[str, Any],
    needed: int,
    budget: dict[str, Any],
    first_pass: dict[str, Any] | None = None,
    intro: str = "",
    core_ev: dict[str, Any] | None = None,
) -> str:
    table = results["rows"]
    best = results["best"]
    gate_minimum = budget["min_probe_positive_words"]
    dtypes = " / ".join(sorted({r["llm_dtype"] for r in table}))
    cached = " / ".join(f"{n:,}" for n in sorted({r["cached_tokens"] for r in table}))
    epochs = max(r["training_tokens"] / r["cached_tokens"] for r in table)
    lines = [
        "# Where first-letter absorption carries signal on SmolLM2-135M",
        "",
        *([intro, ""] if intro else []),
        "Generated by `research/absorption_validity_publish.py` from `results.json` "
        "(rows from `research/absorption_validity.py`): TopK SAEs trained with SAELens's `SAETrainer` on cached "
        f"residual activations of the embedded corpus (SmolLM2 in {dtypes}, {cached} cached tokens per hook, the "
        f"SAEs trained for up to {epochs:.1f} epochs of them), each evaluated with the plugin's "
        "absorption eval and its per-letter signal gate (`sae_mask_plugin/evals/absorption/gate.py`). Snapshots "
        "taken during training give the training-token rows. Cosine gates: SAEBench's 0.1 / 0.025 scaled by "
        "sqrt(2304 / 576) = 2 (the headline variant at d_model 576); the SAEBench-cosine column counts letters "
        f"passing with the unscaled gates. A headline needs {needed} passing letters.",
        "",
        *table_lines(table),
    ]
    reasons: dict[str, int] = {}
    for r in table:
        for reason, count in r["letters_failing_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    top_reasons = sorted(reasons.items(), key=lambda item: -item[1])
    lines += [
        "",
        "## What the gate showed",
        "",
        f"- Best setting: {best['run']} with {best['words_per_letter']} words per letter: "
        f"{best['letters_passing']} letters pass ({needed} needed), main-latent precision "
        f"{_number(best['mean_main_latent_precision'])}, recall {_number(best['mean_main_latent_recall'])}.",
        f"- Runs with a measurable (gated) absorption: {len(results['measurable_runs'])} of {len(table)}"
        + (f" ({', '.join(results['measurable_runs'])})." if results["measurable_runs"] else "."),
        *(
            f"- With {words} words per letter, {_span_of(counts)} letters reach "
            f"{gate_minimum} probe-positive test words (the word budget below counts test words, an upper bound)."
            for words, counts in letters_with_words(table).items()
        ),
        "- Why letters fail, summed over all rows (a letter can fail for several reasons): "
        + "; ".join(f"{reason} {count}" for reason, count in top_reasons)
        + ".",
    ]

    def span(field: str) -> str:
        values = [r[field] for r in table if r[field] is not None]
        return f"{min(values):.3f}–{max(values):.3f}" if values else "—"

    first, further = eval_seconds(table)
    lines += [
        f"- SAEBench's ungated score (its cosine gates, every letter with probe F1 > 0.6) spans "
        f"{span('saebench_absorption')}; on the same letters a randomly initialised SAE of the same shape scores "
        f"{span('random_sae_absorption_ungated')} and the SAE scored with the next letter's main latents "
        f"{span('other_letter_null_ungated')}; the SAE's own main latents lower the score below that null by "
        f"{span('margin_below_other_letter_null')}.",
        "- Eval wall time per SAE (1–2 threads on the 2-core machine, shared with other jobs): the first SAE on a hook and word "
        "list (the LLM side: probe data and absorption prompts) "
        + ", ".join(f"{hook} {seconds:.0f} s" for hook, seconds in first.items())
        + (f"; further SAEs {min(further):.0f}–{max(further):.0f} s." if further else "."),
    ]
    summaries = across_seeds([r for r in table if r.get("passing_letters") is not None], needed)
    seeded = any(
        len(row["seeds"]) >= 2 for row in summaries
    )  # a grid of one seed per setting has no such reading
    if seeded:
        lines += ["", *across_seeds_lines(summaries, needed), *seed_choice_lines(summaries, needed)]
    lines += ["", "## One factor at a time", "", *series_lines(results["series"])]
    # rows with seeds are chosen from across seeds (above); a single SAE passing once decides nothing
    choice = [] if seeded else choice_lines(results, budget, needed)
    lines += ["", *word_budget_lines(budget), *choice]
    if first_pass is not None:
        lines += first_pass_lines(first_pass)
    if core_ev is not None:
        lines += ["", *core_ev_lines(core_ev)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, default=Path("outputs/absorption_validity/rows.json"))
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument(
        "--intro", default="", help="a paragraph under the title (what this folder's rows are for)"
    )
    parser.add_argument(
        "--budget",
        type=Path,
        default=DOCS / "word_budget.json",
        help="research/absorption_validity_words.py's output",
    )
    parser.add_argument(
        "--keep-published",
        action="store_true",
        help="keep the rows of the docs folder's results.json that --rows does not re-run",
    )
    args = parser.parse_args()
    rows = json.loads(args.rows.read_text())
    published = args.docs / "results.json"
    kept = json.loads(published.read_text())["rows"] if args.keep_published and published.is_file() else []
    results = build(rows, kept)
    needed = next(iter(rows.values()))["metrics"]["gate"]["absorption_letters_needed"]
    write_json_atomic(args.docs / "results.json", results)
    budget = json.loads(args.budget.read_text())
    first_pass_path = args.docs / "first_pass.json"
    first_pass = json.loads(first_pass_path.read_text()) if first_pass_path.is_file() else None
    intro_path = args.docs / INTRO_FILE
    intro = intro_path.read_text().strip() if intro_path.is_file() else ""
    core_ev_path = args.docs / CORE_EV_FILE
    core_ev = json.loads(core_ev_path.read_text()) if core_ev_path.is_file() else None
    write_text_atomic(args.docs / "README.md", readme(results, needed, budget, first_pass, intro, core_ev))


if __name__ == "__main__":
    main()
