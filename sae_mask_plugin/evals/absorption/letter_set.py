"""A fixed letter set for a paired absorption comparison, chosen from the baselines alone (pure: no SAELens).

The per-letter signal gate (`gate.py`) decides, SAE by SAE, which letters carry signal. Averaging each SAE over
its own passing letters lets a comparison pick its letters: a masked SAE that loses the hard letters would look
less absorbed. So a paired comparison first fixes one letter set per cell (architecture, width, k) from the
baselines of that cell, by a rule written down before any masked SAE is scored (`LetterSetRule`, a recipe's
`absorption_letter_set`), then scores every SAE of the cell, baseline and masked, on exactly those letters:

- `fixed_letters_k1_full_absorption_score`: the k = 1 full-absorption rate averaged over the set (the headline;
  the score the ground-truth control found to rank-track true absorption);
- `fixed_letters_absorption_fraction_score`: SAEBench's absorption fraction over the set (beside it);
- `fixed_letters_passing`: how many letters of the set pass the gate in this SAE. A masked SAE that loses (or
  gains) letter latents shows here; on a letter it lost, its k = 1 score reads like absorption, so the two are
  read together;
- `fixed_letters_k1_dropped_score`: the share of probe-positive words where nothing aligned with the letter fires
  (dropped, not absorbed; recorded beside the scores, not yet validated on ground truth).

Typical use:

    rule = LetterSetRule(min_baseline_seeds=4)  # or LetterSetRule(letters="ehjkprvw")
    letter_set = fix_letter_set([baseline.passing for baseline in baselines], rule)
    scores = letter_set_scores(per_letter_scores_of_one_sae, letter_set)
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sae_mask_plugin.evals.means import mean_if_complete

FIXED_K1_SCORE = "fixed_letters_k1_full_absorption_score"
FIXED_FRACTION_SCORE = "fixed_letters_absorption_fraction_score"
FIXED_PASSING = "fixed_letters_passing"
FIXED_DROPPED = "fixed_letters_k1_dropped_score"
FIXED_LETTER_METRICS = (FIXED_K1_SCORE, FIXED_FRACTION_SCORE, FIXED_PASSING, FIXED_DROPPED)


class LetterSetError(ValueError):
    """A letter set that cannot be fixed: no rule, too few baselines for the rule, or an invalid letter list."""


@dataclass(frozen=True)
class LetterSetRule:
    """How a cell's letter set is fixed, before the masked SAEs are scored: from the baselines
    (`min_baseline_seeds`: a letter joins when it passes the gate in at least that many baselines of the cell),
    or by hand (`letters`, e.g. `"ehjkprvw"`). A set of fewer than `min_letters` letters is too small to
    compare on (the comparison then reports no fixed-set score)."""

    min_baseline_seeds: int | None = None
    letters: str | None = None
    min_letters: int = 10

    def __post_init__(self) -> None:
        if self.letters is not None:
            if not isinstance(self.letters, str) or not self.letters:
                raise LetterSetError(f"letters must be a non-empty string of letters, got {self.letters!r}")
            wrong = sorted(set(self.letters) - set(string.ascii_lowercase))
            if wrong:
                raise LetterSetError(
                    f"letters must be lowercase a-z, got {''.join(wrong)!r} in {self.letters!r}"
                )
            if len(set(self.letters)) != len(self.letters):
                raise LetterSetError(f"letters must not repeat, got {self.letters!r}")
        if (self.min_baseline_seeds is None) == (self.letters is None):
            raise LetterSetError("a letter-set rule sets exactly one of min_baseline_seeds and letters")
        if self.min_baseline_seeds is not None and (
            isinstance(self.min_baseline_seeds, bool)
            or not isinstance(self.min_baseline_seeds, int)
            or self.min_baseline_seeds < 1
        ):
            raise LetterSetError(
                f"min_baseline_seeds must be a positive integer, got {self.min_baseline_seeds!r}"
            )
        if (
            isinstance(self.min_letters, bool)
            or not isinstance(self.min_letters, int)
            or self.min_letters < 1
        ):
            raise LetterSetError(f"min_letters must be a positive integer, got {self.min_letters!r}")

    def describe(self) -> str:
        """The rule in words, e.g. `letters passing the gate in >= 4 baseline seeds`."""
        if self.letters is not None:
            return f"letters fixed by hand ({self.letters})"
        return f"letters passing the gate in >= {self.min_baseline_seeds} baseline seeds"


@dataclass(frozen=True)
class FixedLetterSet:
    """A cell's letter set: `letters` by the rule, `every_seed_letters` (passing in every baseline) beside it."""

    letters: tuple[str, ...]
    every_seed_letters: tuple[str, ...]
    n_baselines: int
    rule: LetterSetRule

    @property
    def measurable(self) -> bool:
        """Whether the set has at least the rule's `min_letters`."""
        return len(self.letters) >= self.rule.min_letters

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the rule in words."""
        return {
            "letters": "".join(self.letters),
            "every_seed_letters": "".join(self.every_seed_letters),
            "n_letters": len(self.letters),
            "n_baselines": self.n_baselines,
            "measurable": self.measurable,
            "rule": {**asdict(self.rule), "text": self.rule.describe()},
        }


def fix_letter_set(baseline_passing: Sequence[Collection[str]], rule: LetterSetRule) -> FixedLetterSet:
    """The letter set of one cell from its baselines' passing letters (one collection per baseline seed).

    Raises `LetterSetError` when there is no baseline or fewer baselines than the rule's `min_baseline_seeds`
    (the set would not be fixed by the rule written down)."""
    if not baseline_passing:
        raise LetterSetError("a letter set is fixed from the baselines, and the cell has none")
    counts = Counter(letter for passing in baseline_passing for letter in set(passing))
    every = tuple(sorted(letter for letter, n in counts.items() if n == len(baseline_passing)))
    if rule.letters is not None:
        return FixedLetterSet(tuple(sorted(rule.letters)), every, len(baseline_passing), rule)
    assert rule.min_baseline_seeds is not None
    if len(baseline_passing) < rule.min_baseline_seeds:
        raise LetterSetError(
            f"the rule needs letters passing in >= {rule.min_baseline_seeds} baseline seeds, but the cell has "
            f"{len(baseline_passing)} baselines"
        )
    letters = tuple(sorted(letter for letter, n in counts.items() if n >= rule.min_baseline_seeds))
    return FixedLetterSet(letters, every, len(baseline_passing), rule)


@dataclass(frozen=True)
class LetterScore:
    """One letter of one SAE, from its absorption eval (the headline cosine-gate variant); a score is None where
    the eval did not score the letter."""

    passed: bool
    k1_full_absorption_rate: float | None
    absorption_fraction: float | None
    k1_dropped_rate: float | None = None


def letter_set_scores(
    scores: Mapping[str, LetterScore], letter_set: FixedLetterSet
) -> dict[str, float | None]:
    """One SAE's `FIXED_LETTER_METRICS` on `letter_set`: the two absorption scores averaged over the set (None
    where the set is too small or a letter of it was not scored) and the number of its letters passing."""
    missing = [letter for letter in letter_set.letters if letter not in scores]
    if missing:
        raise LetterSetError(f"the SAE's absorption eval has no record of letters {''.join(missing)}")

    def mean(name: str) -> float | None:
        values = [getattr(scores[letter], name) for letter in letter_set.letters]
        return mean_if_complete(values) if letter_set.measurable else None

    return {
        FIXED_K1_SCORE: mean("k1_full_absorption_rate"),
        FIXED_FRACTION_SCORE: mean("absorption_fraction"),
        FIXED_PASSING: float(sum(scores[letter].passed for letter in letter_set.letters)),
        FIXED_DROPPED: mean("k1_dropped_rate"),
    }


def letter_scores_from_eval(result: Mapping[str, Any]) -> dict[str, LetterScore] | None:
    """Each letter's `LetterScore` (the headline cosine-gate variant) from an absorption eval result JSON; None
    for another eval's result, or one written before the per-letter gate existed."""
    gate = (result.get("eval_result_unstructured") or {}).get("absorption_gate")
    if not gate or "letters" not in gate:
        return None
    variant = gate["headline_variant"]
    return {
        entry["letter"]: LetterScore(
            passed=bool(entry["by_variant"][variant]["passed"]),
            k1_full_absorption_rate=entry["by_variant"][variant].get("k1_full_absorption_rate"),
            absorption_fraction=entry["by_variant"][variant].get("absorption_fraction"),
            k1_dropped_rate=entry["by_variant"][variant].get("k1_dropped_rate"),
        )
        for entry in gate["letters"]
    }
