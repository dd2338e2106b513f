"""Fixtures of the training tests: a tiny HookedTransformer with the embedded model's real tokenizer, and real
text from the embedded corpus."""

from __future__ import annotations

import datasets
import pytest
from training_helpers import build_tiny_model
from transformer_lens import HookedTransformer

from sae_mask_plugin.embedded.corpus import load_embedded_corpus
from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
from sae_mask_plugin.training.preflight import load_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    tokenizer = load_tokenizer(EMBEDDED_MODEL_NAME)
    assert tokenizer is not None
    return tokenizer


@pytest.fixture(scope="session")
def tiny_model(tokenizer) -> HookedTransformer:
    """A 2-layer, 32-wide transformer over SmolLM2's vocabulary (random weights)."""
    return build_tiny_model(tokenizer)


@pytest.fixture(scope="session")
def corpus() -> datasets.Dataset:
    return load_embedded_corpus(seed=0)


@pytest.fixture(scope="session")
def texts(corpus) -> datasets.Dataset:
    """The first 3,000 texts of the embedded corpus."""
    return datasets.Dataset.from_dict({"text": corpus[:3000]["text"]})
