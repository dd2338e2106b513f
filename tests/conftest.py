"""Shared fixtures. Tests that load the real embedded SmolLM2 are marked `slow` (they still run in CI)."""

from __future__ import annotations

import os

import pytest
import torch

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
"""What keeps torch, numpy and scikit-learn to one thread in a process started with it."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (pyproject's `-n 2`, one worker per core), each worker and every process a test starts
    compute on one thread; in one process (`-n 0`) nothing changes. The controller sets the
    variables before it starts the workers, so they hold from a worker's first import of torch on."""
    is_worker = "PYTEST_XDIST_WORKER" in os.environ
    if is_worker or config.getoption("numprocesses", None):
        os.environ.update(ONE_THREAD)
    if is_worker:
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded SmolLM2's tokenizer."""
    from sae_mask_plugin.embedded.model import EMBEDDED_MODEL_NAME
    from sae_mask_plugin.training.preflight import load_tokenizer

    tokenizer = load_tokenizer(EMBEDDED_MODEL_NAME)
    assert tokenizer is not None
    return tokenizer


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A 2-layer, 32-wide transformer over SmolLM2's vocabulary (random weights; `tiny_transformer`)."""
    from tiny_transformer import build_tiny_model

    return build_tiny_model(tokenizer)


@pytest.fixture(scope="session")
def embedded_model():
    """The real embedded SmolLM2-135M-Instruct as a HookedTransformer, loaded once per test session."""
    from sae_mask_plugin import load_embedded_model

    torch.manual_seed(0)
    return load_embedded_model()


@pytest.fixture(scope="session")
def pythia_standin_home(tmp_path_factory):
    """A Hugging Face home holding the stand-in Pythia-160M-deduped (exact architecture, random weights) and
    stand-in Pile texts (`research/hub_standins.py`), built once per test session."""
    from research import hub_standins as standins

    home = tmp_path_factory.mktemp("standin-hf")
    standins.build_all(home, ["pythia-160m-deduped"], dataset_texts=1500)
    return home
