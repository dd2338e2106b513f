"""SAEBench-format evals of SAEs: first-letter absorption, sparse probing, OOD probing and core metrics offline,
and SAEBench's SCR and TPP where their hub datasets can be had.

Laid out like SAEBench (`<eval>/eval_config.py`, `main.py`, `eval_output.py`, each `main.run_eval(config,
selected_saes, device, output_path, force_rerun)`), reusing SAEBench's and sae-probes' functions. The one-call
entry is `evaluate_saes`; the command line is `sae-mask eval` (`evals.cli`). Names load on first use, so
`sae-mask eval --help` imports no SAEBench.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_mask_plugin.lazy import lazy_exports

if TYPE_CHECKING:
    from sae_mask_plugin.evals.common import SUMMARY_FILENAME, EvalInputError
    from sae_mask_plugin.evals.runner import (
        EVAL_NAMES,
        OFFLINE_EVAL_NAMES,
        evaluate_saes,
        make_config,
        validate_inputs,
    )

__all__ = [
    "EVAL_NAMES",
    "OFFLINE_EVAL_NAMES",
    "SUMMARY_FILENAME",
    "EvalInputError",
    "evaluate_saes",
    "make_config",
    "validate_inputs",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(["EvalInputError", "SUMMARY_FILENAME"], f"{__name__}.common"),
        **dict.fromkeys(
            ["EVAL_NAMES", "OFFLINE_EVAL_NAMES", "evaluate_saes", "make_config", "validate_inputs"],
            f"{__name__}.runner",
        ),
    },
)
