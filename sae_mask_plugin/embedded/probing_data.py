"""Probing datasets shipped inside the `sae-probes` wheel, read offline and with explicit labels.

sae-probes ships ~155 probing datasets (`data/cleaned_data/*.csv.zst`, a `prompt` text column and a `target`
label) and OOD test sets for eight of them (`data/OOD data/<task>_OOD.csv.zst`). Its own OOD reader looks for
uncompressed `.csv` files the wheel does not ship, and label-encodes each file alphabetically on its own, so the
labels are mapped here explicitly, per task, to {0, 1}.

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
OOD_TASKS: tuple[str, ...] = (
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

HELD_OUT_DATASETS: tuple[str, ...] = OOD_TASKS + SPARSE_PROBING_DATASETS

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


def load_ood_task(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(in-distribution, OOD) sets of an OOD task, each with `prompt` and `target` in {0, 1}."""
    if name not in OOD_TASKS:
        raise UnknownProbingDatasetError(
            f"unknown OOD task {name!r}; sae-probes ships: {', '.join(OOD_TASKS)}"
        )
    ood_frame = pd.read_csv(OOD_DATA_DIR / f"{name}_OOD.csv.zst", compression="zstd")
    ood_targets = _map_labels(ood_frame["target"], _label_map_for(name, ood=True), f"{name} (OOD)")
    ood = pd.DataFrame({"prompt": ood_frame["prompt"].astype(str), "target": ood_targets})
    return load_probing_dataset(name), ood


def held_out_texts() -> list[str]:
    """Every text an eval may show the model: held-out datasets' texts and all OOD sets' texts."""
    texts: list[str] = []
    for name in HELD_OUT_DATASETS:
        texts += read_dataset_texts(name)["prompt"].astype(str).tolist()
    for name in OOD_TASKS:
        texts += load_ood_task(name)[1]["prompt"].tolist()
    return texts
