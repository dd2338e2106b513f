"""The offline embedded training corpus: real text from the datasets sae-probes ships, decontaminated.

Built from every sae-probes dataset that is not held out for evaluation (`probing_data.HELD_OUT_DATASETS`),
deduplicated, then decontaminated the way LM evaluations are: a corpus text is dropped when

- it equals a held-out text (after lower-casing and folding white space), or
- it shares a 13-word span with a held-out text of 13 words or more, or
- it contains, as a contiguous word span, a whole held-out text of 3 to 12 words (short held-out texts such as
  person names, which would otherwise sit inside longer corpus texts).

Words are `\\w+` runs, lower-cased. Held-out texts are those of `HELD_OUT_DATASETS` and every OOD set.

The result is a `datasets.Dataset` with one `text` column: SAELens's `override_dataset` with
`is_dataset_tokenized=False` tokenizes it and packs texts into `context_size` windows with BOS per document.
Size (sae-probes 0.4.2): 248,420 texts, about 16 M SmolLM2 tokens (mean 65, median 22 tokens a text).

One text in `CALIBRATION_MODULUS` (chosen by a hash of the text, so independent of order and seed) is kept out of
the training corpus as the *calibration split* (`load_calibration_texts`): clean text disjoint from the training
corpus and from every evaluation set, on which SAE thresholds are calibrated after training.
The built corpus is cached under `cache_root()` (atomically: written to a temporary folder and renamed), and
its order is a deterministic shuffle for the given seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import tempfile
from collections.abc import Iterable
from importlib.metadata import version as package_version
from pathlib import Path

import datasets
from tqdm.auto import tqdm

from sae_mask_plugin.embedded.model import cache_root
from sae_mask_plugin.embedded.probing_data import (
    HELD_OUT_DATASETS,
    held_out_texts,
    list_probing_datasets,
    read_dataset_texts,
)
from sae_mask_plugin.files import build_lock, publish

CORPUS_FORMAT_VERSION = 2
CALIBRATION_MODULUS = 100
CALIBRATION_FILENAME = "calibration_texts.json"
CALIBRATION_ORDER_SEED = 0
SPAN_WORDS = 13
MIN_CONTAINED_WORDS = 3
_WORD = re.compile(r"\w+")


def words_of(text: str) -> tuple[str, ...]:
    """Lower-cased `\\w+` words of a text: the unit of the decontamination spans."""
    return tuple(_WORD.findall(text.lower()))


def _spans(words: tuple[str, ...], length: int) -> Iterable[tuple[str, ...]]:
    return (words[start : start + length] for start in range(len(words) - length + 1))


class Decontaminator:
    """Decides whether a candidate training text overlaps any held-out evaluation text."""

    def __init__(self, held_out: Iterable[str]) -> None:
        self.texts: set[tuple[str, ...]] = set()
        self.long_spans: set[tuple[str, ...]] = set()
        self.short_texts: dict[int, set[tuple[str, ...]]] = {}
        for text in held_out:
            words = words_of(text)
            self.texts.add(words)
            if len(words) >= SPAN_WORDS:
                self.long_spans.update(_spans(words, SPAN_WORDS))
            elif len(words) >= MIN_CONTAINED_WORDS:
                self.short_texts.setdefault(len(words), set()).add(words)

    def is_contaminated(self, text: str) -> bool:
        """True when `text` equals, shares a 13-word span with, or contains a held-out text."""
        words = words_of(text)
        if words in self.texts:
            return True
        if any(span in self.long_spans for span in _spans(words, SPAN_WORDS)):
            return True
        return any(
            span in self.short_texts[length]
            for length in self.short_texts
            if length <= len(words)
            for span in _spans(words, length)
        )


def corpus_dataset_names() -> list[str]:
    """sae-probes datasets that feed the corpus: every shipped dataset not held out for evaluation."""
    held_out = set(HELD_OUT_DATASETS)
    return [name for name in list_probing_datasets() if name not in held_out]


def build_corpus_texts(show_progress: bool = True) -> list[str]:
    """Deduplicated, decontaminated corpus texts in a fixed order (dataset name, then file order)."""
    decontaminator = Decontaminator(held_out_texts())
    seen: set[str] = set()
    texts: list[str] = []
    for name in tqdm(corpus_dataset_names(), desc="building embedded corpus", disable=not show_progress):
        for text in read_dataset_texts(name)["prompt"].dropna().astype(str):
            if text.strip() and text not in seen:
                seen.add(text)
                if not decontaminator.is_contaminated(text):
                    texts.append(text)
    return texts


def is_calibration_text(text: str) -> bool:
    """True for the texts of the calibration split (about one in `CALIBRATION_MODULUS`, chosen by hash)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % CALIBRATION_MODULUS == 0


def _corpus_cache_dir() -> Path:
    key = json.dumps(
        {
            "format": CORPUS_FORMAT_VERSION,
            "sae_probes": package_version("sae-probes"),
            "held_out": HELD_OUT_DATASETS,
            "span_words": SPAN_WORDS,
            "min_contained_words": MIN_CONTAINED_WORDS,
            "calibration_modulus": CALIBRATION_MODULUS,
        },
        sort_keys=True,
    )
    return cache_root() / f"corpus-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _built_corpus_dir(show_progress: bool) -> Path:
    """The cached corpus folder (training split as a saved `datasets.Dataset`, calibration split as JSON), built
    first if missing. Processes building at once take turns (`build_lock`): the first builds, the others load it."""
    cache_dir = _corpus_cache_dir()
    if not _is_corpus_built(cache_dir):
        with build_lock(cache_dir):
            if not _is_corpus_built(cache_dir):
                _build_corpus_cache(cache_dir, show_progress)
    return cache_dir


def _is_corpus_built(cache_dir: Path) -> bool:
    return (cache_dir / CALIBRATION_FILENAME).is_file()


def _build_corpus_cache(cache_dir: Path, show_progress: bool) -> None:
    texts = build_corpus_texts(show_progress)
    calibration = [text for text in texts if is_calibration_text(text)]
    corpus = datasets.Dataset.from_dict({"text": [text for text in texts if not is_calibration_text(text)]})
    staging = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}-", dir=cache_dir.parent))
    try:
        corpus.save_to_disk(str(staging))
        (staging / CALIBRATION_FILENAME).write_text(json.dumps(calibration))
        shutil.rmtree(cache_dir, ignore_errors=True)
        publish(staging, cache_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def is_embedded_corpus_built() -> bool:
    """True when the corpus is in the cache (`load_embedded_corpus` then reads it instead of building it)."""
    return _is_corpus_built(_corpus_cache_dir())


def load_embedded_corpus(seed: int = 0, show_progress: bool = True) -> datasets.Dataset:
    """The embedded training corpus as a `datasets.Dataset` with a `text` column, shuffled by `seed`.

    Built once and cached; the same seed always gives the same order. The calibration split is not in it.
    """
    return datasets.load_from_disk(str(_built_corpus_dir(show_progress))).shuffle(seed=seed)


def load_calibration_texts(show_progress: bool = True) -> list[str]:
    """The calibration split: about 2,500 corpus texts (~160 k SmolLM2 tokens) in a fixed shuffled order (so any
    prefix mixes the source datasets), disjoint from the training corpus and decontaminated like it."""
    texts = json.loads((_built_corpus_dir(show_progress) / CALIBRATION_FILENAME).read_text())
    random.Random(CALIBRATION_ORDER_SEED).shuffle(texts)
    return texts
