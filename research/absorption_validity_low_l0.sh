#!/usr/bin/env bash
# The low-L0 absorption search for the study's absorption arm (docs/absorption_validity/low_l0): block 6, low k,
# one epoch of ~1 M fresh cached tokens, AuxK window 50 steps. Resumable: rerun the same line to continue; then
# publish with python -m research.absorption_validity_publish --rows $OUT/rows.json --docs docs/absorption_validity/low_l0
# --budget docs/absorption_validity/word_budget.json (and copy $OUT/rows.json to the docs folder).
#   OUT=outputs/absorption_search bash research/absorption_validity_low_l0.sh
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export OMP_NUM_THREADS=1
PY=.venv/bin/python
OUT=${OUT:-outputs/absorption_search}
# the published rows (docs/absorption_validity/low_l0/rows.json) let a new machine skip the SAEs already scored
[ -f "$OUT/rows.json" ] || { mkdir -p "$OUT"; cp docs/absorption_validity/low_l0/rows.json "$OUT/rows.json"; }
COMMON=(--out $OUT --cached-tokens 1048576 --training-tokens 1048576 --dead-feature-window 50 --words-per-letter 600)
run() { $PY -m research.absorption_validity "${COMMON[@]}" "$@"; }
run --sae L6-w8192-k8  # the first SAE: SAELens's step (the sparse step was measured on it afterwards)
run --sae L6-w8192-k6 --sparse-step
run --sae L6-w8192-k4 --sparse-step
run --sae L6-w8192-k12 --sparse-step
# seeds of the closest settings, then width and the study's architecture
run --sae L6-w8192-k4 --sparse-step --seed 1
run --sae L6-w8192-k4 --sparse-step --seed 2
run --sae L6-w8192-k6 --sparse-step --seed 1
run --sae L6-w8192-k6 --sparse-step --seed 2
run --sae L6-w8192-k8 --sparse-step --seed 1
run --sae L6-w8192-k8 --sparse-step --seed 2
run --sae L6-w16384-k4 --sparse-step
run --sae L6-w16384-k8 --sparse-step
run --sae L6-w8192-k4-matryoshka --sparse-step
run --sae L6-w8192-k8-matryoshka --sparse-step
run --sae L6-w8192-k4 --sparse-step --seed 3
run --sae L6-w8192-k4 --sparse-step --seed 4
