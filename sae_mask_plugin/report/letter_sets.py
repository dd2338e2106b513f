"""Absorption on a fixed letter set: each cell's letters fixed from its baselines, every SAE of the cell scored on them.

A cell is what a same-k pair shares but the seed: model, hook, architecture, width, training tokens and k. Its
letter set comes from the baselines alone, by the `LetterSetRule` written into the recipe before any masked SAE
was scored (`evals/absorption/letter_set.py`); each SAE of the cell, baseline and masked, then gets the
`FIXED_LETTER_METRICS`, which the same-k view compares like any other metric. The matched-L0 view leaves them out:
its baseline curve crosses k, and each k has its own letter set.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from sae_mask_plugin.evals.absorption.letter_set import (
    FixedLetterSet,
    LetterScore,
    LetterSetRule,
    fix_letter_set,
    letter_set_scores,
)
from sae_mask_plugin.report.records import RunRecord


def _cell_key(record: RunRecord) -> tuple[Any, ...]:
    """The pairing key without the seed."""
    *curve, _seed, k = record.pairing_key
    return (*curve, k)


def _cell_label(record: RunRecord, labels_taken: dict[str, tuple[Any, ...]]) -> str:
    """`<shape>` (e.g. `topk w8192 k8`), with hook and tokens added when two cells share a shape."""
    label = record.shape
    if labels_taken.get(label, _cell_key(record)) != _cell_key(record):
        label = f"{record.shape} {record.hook_name} t{record.training_tokens}"
    labels_taken[label] = _cell_key(record)
    return label


def apply_letter_sets(
    records: list[RunRecord], rule: LetterSetRule
) -> tuple[list[RunRecord], dict[str, FixedLetterSet]]:
    """`records` with the fixed-set metrics added to every SAE of a cell whose baselines carry per-letter
    absorption scores, and each such cell's letter set by its label. SAEs without per-letter scores are returned
    unchanged; a cell with too few baselines for the rule raises `LetterSetError` (from `fix_letter_set`)."""
    cells: dict[tuple[Any, ...], list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.absorption_letters is not None:
            cells[_cell_key(record)].append(record)
    labels_taken: dict[str, tuple[Any, ...]] = {}
    letter_sets: dict[str, FixedLetterSet] = {}
    scored: dict[str, dict[str, float | None]] = {}
    for members in cells.values():
        baselines = sorted((r for r in members if r.is_baseline), key=lambda r: (r.seed is None, r.seed))
        if not baselines:
            continue
        letter_set = fix_letter_set(
            [
                [letter for letter, score in (r.absorption_letters or {}).items() if score["passed"]]
                for r in baselines
            ],
            rule,
        )
        letter_sets[_cell_label(baselines[0], labels_taken)] = letter_set
        for record in members:
            letters = {
                letter: LetterScore(**score) for letter, score in (record.absorption_letters or {}).items()
            }
            scored[record.name] = letter_set_scores(letters, letter_set)
    updated = [
        replace(
            record,
            metrics={
                **record.metrics,
                **{key: value for key, value in scored.get(record.name, {}).items() if value is not None},
            },
        )
        for record in records
    ]
    return updated, letter_sets


def letter_set_lines(letter_sets: dict[str, FixedLetterSet]) -> list[str]:
    """The report's "Absorption on a fixed letter set" section (empty without letter sets)."""
    if not letter_sets:
        return []
    lines = [
        "## Absorption on a fixed letter set",
        "",
        "Each cell's letters were fixed from its baselines alone, by the rule below written down before the masked "
        "SAEs were scored; every SAE of the cell, baseline and masked, is scored on exactly those letters (the "
        "k = 1 full-absorption rate, SAEBench's absorption fraction beside it) and counts how many of them pass "
        "its own gate. Read the two together: on a letter whose latent a masked SAE lost, its k = 1 score reads "
        "like absorption. These metrics are compared at the same k only (each k has its own letter set).",
        "",
        "| cell | rule | baselines | letters (n) | passing in every baseline | compared |",
        "|---|---|---|---|---|---|",
    ]
    for label, letter_set in letter_sets.items():
        compared = (
            "yes"
            if letter_set.measurable
            else f"no: fewer than {letter_set.rule.min_letters} letters (fixed-set scores not computed)"
        )
        lines.append(
            f"| {label} | {letter_set.rule.describe()} | {letter_set.n_baselines} | "
            f"{''.join(letter_set.letters) or '—'} ({len(letter_set.letters)}) | "
            f"{''.join(letter_set.every_seed_letters) or '—'} | {compared} |"
        )
    return [*lines, ""]
