"""Probing datasets shipped inside the `sae-probes` wheel, read offline and with explicit labels.

sae-probes ships ~155 probing datasets (`data/cleaned_data/*.csv.zst`, a `prompt` text column and a `target`
label) and OOD test sets for eight of them (`data/OOD data/<task>_OOD.csv.zst`). Its own OOD reader looks for
uncompressed `.csv` files the wheel does not ship, and label-encodes each file alphabetically on its own, so the
labels are mapped here explicitly, per task, to {0, 1}. One more OOD task is ours: a concept sae-probes ships
from two sources (`CROSS_SOURCE_OOD_TASKS`), trained on one and tested on the other. OOD tasks are read
deduplicated (`deduplicate_texts`); `OOD_SHIFTS` says what each shift is and `INVALID_OOD_TASKS` why a task
cannot measure anything.

The datasets are split once into *held-out evaluation* datasets (`HELD_OUT_DATASETS`: every OOD task's
in-distribution set plus the default sparse-probing sets; the OOD sets themselves are never corpus material)
and *corpus* datasets (everything else), from which `corpus.load_embedded_corpus` builds training text.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd
from sae_probes.constants import DATA_PATH

from sae_mask_plugin.errors import SaeMaskUserError

CLEANED_DATA_DIR = Path(DATA_PATH) / "cleaned_data"
OOD_DATA_DIR = Path(DATA_PATH) / "OOD data"

# OOD tasks sae-probes ships (`66_living-room_translations` is a 15-row translation table, not a probing set).
SAE_PROBES_OOD_TASKS: tuple[str, ...] = (
    "5_hist_fig_ismale",
    "6_hist_fig_isamerican",
    "7_hist_fig_ispolitician",
    "66_living-room",
    "67_social-security",
    "73_control-group",
    "87_glue_cola",
    "90_glue_qnli",
)

# Default sparse-probing datasets: binary tasks over sentiment, topic, code language, spam and truthfulness,
# in the spirit of SAEBench's own sparse-probing selection.
SPARSE_PROBING_DATASETS: tuple[str, ...] = (
    "113_movie_sent",
    "157_amazon_5star",
    "161_agnews_0",
    "162_agnews_1",
    "159_code_Python",
    "160_code_HTML",
    "96_spam_is",
    "36_sciq_tf",
)

HELD_OUT_DATASETS: tuple[str, ...] = SAE_PROBES_OOD_TASKS + SPARSE_PROBING_DATASETS

# Our OOD tasks: one concept from two sae-probes sources, name -> (in-distribution dataset, OOD dataset). Both
# datasets are held out of the corpus already (default sparse-probing sets). The OOD set is a fixed
# class-balanced sample of CROSS_SOURCE_OOD_SIZE texts, the size of sae-probes' own OOD sets.
CROSS_SOURCE_OOD_TASKS: dict[str, tuple[str, str]] = {
    "sentiment_movie_to_amazon": ("113_movie_sent", "157_amazon_5star"),
}
CROSS_SOURCE_OOD_SIZE = 300

OOD_TASKS: tuple[str, ...] = SAE_PROBES_OOD_TASKS + tuple(CROSS_SOURCE_OOD_TASKS)

# What each OOD set changes relative to its in-distribution set (read from the shipped files).
OOD_SHIFTS: dict[str, str] = {
    "5_hist_fig_ismale": "historical figures' names -> fictional characters (cartoons, films, games)",
    "6_hist_fig_isamerican": "historical figures' names -> the same kind of names with typos (inserted letters)",
    "7_hist_fig_ispolitician": "historical figures' names -> names written surname first",
    "66_living-room": "English web text with/without 'living room' -> French text with/without 'salon'",
    "67_social-security": "English web text with/without 'social security' -> Spanish text with/without "
    "'seguridad social'",
    "73_control-group": "English web text with/without 'control group' -> German text with/without "
    "'Kontrollgruppe'",
    "87_glue_cola": "CoLA linguistics-textbook sentences -> English-learner exercise sentences (acceptability)",
    "90_glue_qnli": "QNLI question | sentence pairs -> lone news sentences without a question",
    "sentiment_movie_to_amazon": "movie-review snippets (113_movie_sent) -> Amazon product reviews, 1 vs 5 stars "
    "(157_amazon_5star)",
}

# Tasks whose OOD labels cannot be read from the OOD text; kept in the eval's output but never in its headline.
INVALID_OOD_TASKS: dict[str, str] = {
    "90_glue_qnli": "the OOD set is lone news sentences without the question whose entailment the label states "
    "(167 distinct texts in 300 rows, 22 texts carrying both labels), so its labels cannot be read from its text",
}

# Label vocabularies seen in the shipped files, mapped to {0, 1}. The bigram tasks label whether the text
# contains the task's bigram. GLUE QNLI's in-distribution set uses GLUE ids (0 = entailment,
# 1 = not_entailment); its OOD set labels one class "not_entailment" and the other "1", which can only be
# entailment (it is the complement), so it maps to 0 — the same assignment sae-probes' alphabetical encoder makes.
_LABEL_MAPS: dict[str, dict[str, int]] = {
    "binary": {"0": 0, "1": 1},
    "bigram": {"not_bigram": 0, "bigram": 1},
    "qnli_ood": {"1": 0, "not_entailment": 1},
}


class UnknownProbingDatasetError(SaeMaskUserError, ValueError):
    """A dataset or OOD task name that sae-probes does not ship."""


def list_probing_datasets() -> list[str]:
    """Names (`<number>_<tag>`) of every dataset in sae-probes' `cleaned_data`, sorted."""
    return sorted(path.name.removesuffix(".csv.zst") for path in CLEANED_DATA_DIR.glob("*.csv.zst"))


def _map_labels(targets: pd.Series, label_map: str, where: str) -> pd.Series:
    mapping = _LABEL_MAPS[label_map]
    as_text = targets.astype(str)
    unknown = sorted(set(as_text) - set(mapping))
    if unknown:
        raise ValueError(f"{where}: labels {unknown} are not in the {label_map!r} map {mapping}")
    return as_text.map(mapping).astype(int)


def _label_map_for(name: str, ood: bool) -> str:
    if name in {"66_living-room", "67_social-security", "73_control-group"}:
        return "bigram"
    if name == "90_glue_qnli" and ood:
        return "qnli_ood"
    return "binary"


@cache
def read_dataset_texts(name: str) -> pd.DataFrame:
    """Any shipped dataset as raw columns (labels untouched), for corpus building."""
    path = CLEANED_DATA_DIR / f"{name}.csv.zst"
    if not path.is_file():
        raise UnknownProbingDatasetError(f"sae-probes ships no dataset {name!r} (looked for {path})")
    return pd.read_csv(path, compression="zstd")


def load_probing_dataset(name: str) -> pd.DataFrame:
    """A binary probing dataset: columns `prompt` (str) and `target` (int in {0, 1}), in file order."""
    frame = read_dataset_texts(name)
    targets = _map_labels(frame["target"], _label_map_for(name, ood=False), name)
    return pd.DataFrame({"prompt": frame["prompt"].astype(str), "target": targets})


def _read_ood_set(name: str) -> pd.DataFrame:
    """The OOD set sae-probes ships for task `name`, as read (labels untouched)."""
    return pd.read_csv(OOD_DATA_DIR / f"{name}_OOD.csv.zst", compression="zstd")


def deduplicate_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (`prompt`, `target`) with each text once, in first-seen order; texts with both labels dropped."""
    labels_per_text = frame.groupby("prompt", sort=False)["target"].nunique()
    unambiguous = frame[frame["prompt"].map(labels_per_text) == 1]
    return unambiguous.drop_duplicates("prompt").reset_index(drop=True)


def load_ood_task(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(in-distribution, OOD) sets of an OOD task, each with `prompt` and `target` in {0, 1}, deduplicated
    (`deduplicate_texts`); OOD texts that also occur in the in-distribution set are dropped from the OOD set."""
    if name not in OOD_TASKS:
        raise UnknownProbingDatasetError(f"unknown OOD task {name!r}; choose from: {', '.join(OOD_TASKS)}")
    if name in CROSS_SOURCE_OOD_TASKS:
        source, target = CROSS_SOURCE_OOD_TASKS[name]
        in_distribution = load_probing_dataset(source)
        ood = deduplicate_texts(load_probing_dataset(target))
        ood = ood.groupby("target").sample(CROSS_SOURCE_OOD_SIZE // 2, random_state=0).sort_index()
    else:
        ood_frame = _read_ood_set(name)
        ood_targets = _map_labels(ood_frame["target"], _label_map_for(name, ood=True), f"{name} (OOD)")
        ood = pd.DataFrame({"prompt": ood_frame["prompt"].astype(str), "target": ood_targets})
        in_distribution = load_probing_dataset(name)
    in_distribution, ood = deduplicate_texts(in_distribution), deduplicate_texts(ood)
    ood = ood[~ood["prompt"].isin(set(in_distribution["prompt"]))].reset_index(drop=True)
    return in_distribution, ood


def held_out_texts() -> list[str]:
    """Every text an eval may show the model: held-out datasets' texts and all OOD sets' texts, as shipped."""
    texts: list[str] = []
    for name in HELD_OUT_DATASETS:
        texts += read_dataset_texts(name)["prompt"].astype(str).tolist()
    for name in SAE_PROBES_OOD_TASKS:
        texts += _read_ood_set(name)["prompt"].astype(str).tolist()
    return texts
