"""SAEBench-format evals of SAEs, offline: first-letter absorption, sparse probing, OOD probing and core metrics.

Laid out like SAEBench (`<eval>/eval_config.py`, `main.py`, `eval_output.py`, each `main.run_eval(config,
selected_saes, device, output_path, force_rerun)`), reusing SAEBench's and sae-probes' functions. The one-call
entry is `evaluate_saes`; the command line is `sae-mask eval` (`evals.cli`).
"""

from sae_mask_plugin.evals.common import EvalInputError
from sae_mask_plugin.evals.runner import (
    EVAL_NAMES,
    SUMMARY_FILENAME,
    evaluate_saes,
    make_config,
    validate_inputs,
)

__all__ = [
    "EVAL_NAMES",
    "SUMMARY_FILENAME",
    "EvalInputError",
    "evaluate_saes",
    "make_config",
    "validate_inputs",
]
