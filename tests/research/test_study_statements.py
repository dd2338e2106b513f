"""`python -m research.study_statements`: it fills its own blocks from a results.json and leaves other generators' blocks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
FIRST_EDITION_RESULTS = ROOT / "docs" / "smollm2_study" / "first_edition" / "results.json"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "research.study_statements", str(FIRST_EDITION_RESULTS), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_update_fills_its_blocks_keeps_the_others_and_check_then_passes(tmp_path):
    page = tmp_path / "page.md"
    other = "<!-- begin generated: shard-times -->\nkept as it is\n<!-- end generated: shard-times -->\n"
    page.write_text(
        f"# page\n<!-- begin generated: what-we-found -->\nold\n<!-- end generated: what-we-found -->\n{other}"
    )
    assert _run("--check", page).returncode == 1
    assert _run("--update", page).returncode == 0
    text = page.read_text()
    assert "old" not in text and "paired seeds" in text and other in text
    assert _run("--check", page).returncode == 0


def test_a_page_with_none_of_its_blocks_is_an_error(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- begin generated: shard-times -->\nx\n<!-- end generated: shard-times -->\n")
    result = _run("--update", page)
    assert result.returncode == 2 and "has none of the generated blocks" in result.stderr
