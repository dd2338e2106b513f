#!/usr/bin/env bash
# Run the tests that touch SAELens's seams against the lowest SAELens release pyproject.toml allows and the newest
# below 7, each swapped into the project's environment (only sae-lens changes: it is installed with --no-deps into a
# throwaway folder put first on PYTHONPATH), one thread.
#
#   bash scripts/compat_matrix.sh [VENV]          # VENV defaults to ./.venv; prints one result line per release
#
# The train-flag snapshot (`training/flags.json`) is taken from one SAELens release; with another, `sae-mask train`
# parses with SAELens directly, so the snapshot comparison test is left out here.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${1:-$REPO_DIR/.venv}/bin/python"
TESTS=(tests/training tests/masking tests/calibration tests/test_cli_startup.py tests/test_imports.py)
DESELECT=(--deselect tests/test_cli_startup.py::test_the_flag_snapshot_is_the_installed_saelens_one)

for requirement in "sae-lens==6.54.0" "sae-lens>=6.54,<7"; do
  overlay="$(mktemp -d)"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --target "$overlay" "$requirement"
  version="$(PYTHONPATH="$overlay" "$PYTHON" -c 'from importlib.metadata import version; print(version("sae-lens"))')"
  set +e
  (cd "$REPO_DIR" && PYTHONPATH="$overlay:$REPO_DIR" OMP_NUM_THREADS=1 "$PYTHON" -m pytest -q -m "not slow" \
    -p no:cacheprovider "${DESELECT[@]}" "${TESTS[@]}" >"$overlay/pytest.log" 2>&1)
  status=$?
  set -e
  echo "sae-lens $version: $(tail -n 1 "$overlay/pytest.log") (exit $status; log $overlay/pytest.log)"
done
