"""Every ```python block of README.md and of the documentation site's pages runs as printed, so the documentation
cannot drift from the code.

The blocks run in order (README, then the pages in `mkdocs.yml`'s nav order), each distinct block once, in one
working folder. Offline blocks run in this process, unchanged. Blocks that name a hub model run in a fresh
interpreter against a local stand-in of the hub (`research/hub_standins.py`: Pythia-160M-deduped's exact
architecture with random weights, embedded-corpus texts as the Pile; the hub switched off, W&B disabled), changed
in the one line their comment allows: the training budget.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sae_mask_plugin import cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
HUB_MODEL = '"pythia-160m-deduped"'
HUB_BUDGET = "training_tokens=100_000_000,  # the budget: the only line to change for a shorter run"
STANDIN_BUDGET = "training_tokens=8_192,"
"""Two training batches of SAELens's default 4,096 tokens."""


def documents() -> list[Path]:
    """README, then the site's pages in nav order (result folders hold no code blocks and are not read)."""
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    pages = [page for entry in nav for page in entry.values() if isinstance(page, str)]
    return [README, *(REPO / "docs" / page for page in pages)]


def fenced_blocks(language: str) -> list[tuple[str, str]]:
    """`(where, code)` of every distinct ```language block of the documents, in order."""
    found: dict[str, str] = {}
    for path in documents():
        pattern = rf"^ *```{language}\n(.*?)^ *```"
        for number, block in enumerate(re.findall(pattern, path.read_text(), flags=re.M | re.S), start=1):
            found.setdefault(block, f"{path.relative_to(REPO)} {language} block {number}")
    return [(where, block) for block, where in found.items()]


def hub_blocks() -> list[tuple[str, str]]:
    return [(where, block) for where, block in fenced_blocks("python") if HUB_MODEL in block]


def offline_blocks() -> list[tuple[str, str]]:
    return [(where, block) for where, block in fenced_blocks("python") if HUB_MODEL not in block]


def test_hub_blocks_say_which_line_may_change():
    blocks = hub_blocks()
    assert len(blocks) >= 2  # the plain SAELens script and its masked drop-in
    for where, block in blocks:
        assert block.count(HUB_BUDGET) == 1, where
    assert any("MaskedLanguageModelSAETrainingRunner" in block for _, block in offline_blocks())


@pytest.mark.slow
def test_every_offline_python_block_runs_as_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for where, block in offline_blocks():
        exec(compile(block, where, "exec"), {"__name__": "documentation_block"})
    for name in ("baseline", "masked"):
        assert (tmp_path / "out" / name / "sae_weights.safetensors").is_file()
    assert sorted(path.name for path in (tmp_path / "evals" / "core").glob("*.json")) == [
        "baseline_custom_sae_eval_results.json",
        "masked_custom_sae_eval_results.json",
    ]


@pytest.mark.slow
@pytest.mark.xdist_group("pythia_standin")  # with the hub tests: one worker builds the stand-in hub
def test_every_hub_python_block_runs_against_the_standin_hub(pythia_standin_home, tmp_path):
    from sae_mask_plugin.sae_metadata import read_masking_metadata

    env = {
        **os.environ,
        "HF_HOME": str(pythia_standin_home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    for number, (where, block) in enumerate(hub_blocks()):
        folder = tmp_path / f"block{number}"
        folder.mkdir()
        (folder / "block.py").write_text(block.replace(HUB_BUDGET, STANDIN_BUDGET))
        done = subprocess.run(
            [sys.executable, "block.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=1200
        )
        assert done.returncode == 0, f"{where}\n{done.stderr[-4000:]}"
        (saved,) = [path.parent for path in folder.rglob("cfg.json") if "checkpoints" not in path.parts]
        masking = read_masking_metadata(saved)
        assert (masking.p if masking else 0.0) == (0.3 if "masking=MaskingConfig(p=0.3)" in block else 0.0), (
            where
        )


def test_every_command_the_documents_name_exists():
    named = set()
    for path in documents():
        named |= set(re.findall(r"`?sae-mask ([a-z][a-z-]*)", path.read_text()))
    assert named and named <= set(cli.SUBCOMMANDS), named - set(cli.SUBCOMMANDS)


def test_the_documented_dry_run_runs_as_written(capsys):
    bash = "".join(block for _, block in fenced_blocks("bash"))
    (line,) = [line for line in bash.splitlines() if line.startswith("sae-mask") and "--dry-run" in line]
    argv = shlex.split(line, comments=True)
    assert cli.main(argv[1:]) == 0
    assert "paper_pythia160m" in capsys.readouterr().out
