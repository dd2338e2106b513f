"""Fixtures of the eval tests: one small real SAE on the embedded default, trained once and cached on disk."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import sae_lens

from sae_mask_plugin.evals.common import settings_key
from sae_mask_plugin.evals.reference_saes import DEFAULT_HOOK_NAME, train_reference_sae
from sae_mask_plugin.files import build_lock

REFERENCE_SAE = {"hook_name": DEFAULT_HOOK_NAME, "d_sae": 1024, "k": 32, "training_tokens": 8_192, "seed": 0}


@pytest.fixture(scope="session")
def reference_sae_path(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedded_model
) -> Path:
    """A BatchTopK SAE (d_sae 1024, k 32) trained by plain SAELens on 8k tokens of the embedded corpus at
    layer 12; trained once into pytest's cache folder (renamed into place when complete; test processes sharing
    the folder take turns), else once per session."""
    key = settings_key({**REFERENCE_SAE, "sae_lens": sae_lens.__version__})
    cache = getattr(request.config, "cache", None)  # absent under `-p no:cacheprovider`
    root = (
        Path(cache.mkdir("sae_mask_evals"))
        if cache is not None
        else tmp_path_factory.mktemp("sae_mask_evals")
    )
    folder = root / f"reference-sae-{key}"
    with build_lock(folder):
        if not (folder / "cfg.json").is_file():
            staging = Path(tempfile.mkdtemp(prefix=".reference-sae-", dir=root))
            try:
                train_reference_sae(staging / "sae", model=embedded_model, **REFERENCE_SAE)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(staging / "sae", folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def reference_sae(reference_sae_path):
    """The reference SAE loaded with SAELens."""
    from sae_lens import SAE

    return SAE.load_from_disk(str(reference_sae_path), device="cpu")


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One activation/probe cache folder shared by the session's eval tests."""
    return tmp_path_factory.mktemp("eval_cache")
