"""Two processes building the embedded model or corpus cache at once (two array tasks on one node): both succeed,
the cache is built once and is valid, and no staging folder is left behind. The expensive conversions are
replaced by slow stand-ins so that the two builds overlap."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sae_mask_plugin.embedded.corpus as corpus_module
import sae_mask_plugin.embedded.model as model_module
from sae_mask_plugin.embedded.model import CACHE_ENV_VAR

BUILD_SECONDS = 1.0


def _run_twice_at_once(target: Callable[[], None]) -> list[int]:
    """Run `target` in two forked processes started together; returns their exit codes."""
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    return [process.exitcode for process in processes]


def _staging_left(cache: Path) -> list[str]:
    return [
        path.name for path in cache.iterdir() if path.name.startswith(".") and not path.name.endswith(".lock")
    ]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_two_processes_building_the_model_cache_build_it_once(
    cache: Path, tmp_path: Path, monkeypatch
) -> None:
    conversions = tmp_path / "conversions.log"
    gguf = tmp_path / "model.gguf"
    gguf.write_text("weights")

    def slow_conversion(source: Path, target: Path) -> None:
        with conversions.open("a") as log:
            log.write("converted\n")
        time.sleep(BUILD_SECONDS)
        (target / model_module._WEIGHTS_FILE).write_text(source.read_text())

    monkeypatch.setattr(model_module, "gguf_path", lambda: gguf)
    monkeypatch.setattr(model_module, "_convert_gguf", slow_conversion)

    assert _run_twice_at_once(model_module.build_embedded_model_cache) == [0, 0]
    assert conversions.read_text().splitlines() == ["converted"]
    assert model_module.is_embedded_model_built()
    assert (model_module.embedded_model_dir() / model_module._WEIGHTS_FILE).read_text() == "weights"
    assert _staging_left(cache) == []


def test_two_processes_building_the_corpus_cache_build_it_once(
    cache: Path, tmp_path: Path, monkeypatch
) -> None:
    builds = tmp_path / "builds.log"

    def slow_texts(show_progress: bool = True) -> list[str]:
        with builds.open("a") as log:
            log.write("built\n")
        time.sleep(BUILD_SECONDS)
        return [f"text {index}" for index in range(100)]

    monkeypatch.setattr(corpus_module, "build_corpus_texts", slow_texts)

    assert _run_twice_at_once(lambda: corpus_module.load_embedded_corpus(show_progress=False)) == [0, 0]
    assert builds.read_text().splitlines() == ["built"]
    loaded = corpus_module.load_embedded_corpus(show_progress=False)
    assert sorted(loaded["text"]) == sorted(f"text {index}" for index in range(100))
    assert _staging_left(cache) == []
