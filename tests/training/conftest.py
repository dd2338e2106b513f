"""Fixtures of the training tests: real text from the embedded corpus (the tiny model is the tests' shared
`tiny_model`)."""

from __future__ import annotations

import datasets
import pytest

from sae_mask_plugin.embedded.corpus import load_embedded_corpus


@pytest.fixture(scope="session")
def corpus() -> datasets.Dataset:
    return load_embedded_corpus(seed=0)


@pytest.fixture(scope="session")
def texts(corpus) -> datasets.Dataset:
    """The first 3,000 texts of the embedded corpus."""
    return datasets.Dataset.from_dict({"text": corpus[:3000]["text"]})
