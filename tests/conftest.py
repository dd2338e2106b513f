"""Shared fixtures. Tests that load the real embedded SmolLM2 are marked `slow` (they still run in CI)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def embedded_model():
    """The real embedded SmolLM2-135M-Instruct as a HookedTransformer, loaded once per test session."""
    from sae_mask_plugin import load_embedded_model

    torch.manual_seed(0)
    return load_embedded_model()
