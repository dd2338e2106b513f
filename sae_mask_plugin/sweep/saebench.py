"""SAEBench's SCR and TPP evals in a sweep, which the paper also reports, through the eval registry.

They read their probing datasets (bias-in-bios, Amazon reviews) from the Hugging Face hub, so they run only on hub
models where the hub can be reached; elsewhere `scr_tpp_status.json` says that they were not run and why. Where
they run, `evals.runner.evaluate_saes` runs them (each SAE in the LLM dtype it was trained on; a failing SAE is
recorded and the others go on), writing SAEBench's layout with an `evaluation_summary.json` beside it, so
`sae-mask compare` gathers them. The status file is written once every SAE has its results, so a sweep rerun
retries failed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sae_mask_plugin.files import write_json_atomic

STATUS_FILENAME = "scr_tpp_status.json"


def run_scr_and_tpp(
    sae_paths: Sequence[str | Path], evals: Sequence[str], model_name: str, out_dir: str | Path, device: str
) -> dict[str, str]:
    """Run `scr` and/or `tpp` on saved SAEs; returns each eval's status, recorded in `<out_dir>/scr_tpp_status.json`
    when it is final ('not run: <why>' or 'done: ...'); an eval that failed for some SAEs reads 'failed for ...'
    and leaves no status file.

    Results go to `<out_dir>/<eval>/<sae name>_custom_sae_eval_results.json` (SAEBench's layout; a failure to
    `<sae name>_custom_sae_error.json`) and are listed in `<out_dir>/evaluation_summary.json`.
    """
    from sae_mask_plugin.evals.common import EvalUnavailableError
    from sae_mask_plugin.evals.runner import evaluate_saes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    status_path = out / STATUS_FILENAME
    try:
        summary = evaluate_saes(sae_paths, evals, out, model_name=model_name, device=device)
    except EvalUnavailableError as error:
        status = dict.fromkeys(evals, f"not run: {error}")
        print(error)
        write_json_atomic(status_path, status)
        return status
    failed = {
        name: [sae for sae, entry in summary.items() if entry["evals"][name]["status"] == "failed"]
        for name in evals
    }
    status = {
        name: f"failed for {', '.join(saes)} (errors in {out / name})"
        if saes
        else f"done: results in {out / name}"
        for name, saes in failed.items()
    }
    if any(failed.values()):
        status_path.unlink(missing_ok=True)
    else:
        write_json_atomic(status_path, status)
    return status
