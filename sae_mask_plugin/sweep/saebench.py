"""SAEBench's SCR and TPP evals (`sae_bench/evals/scr_and_tpp`), which the paper also reports.

They read their probing datasets (bias-in-bios, Amazon reviews) from the Hugging Face hub, so they run only where
the hub can be reached; elsewhere `scr_tpp_status.json` says that they were not run and why. Results are written
in SAEBench's layout with an `evaluation_summary.json` beside them, so `sae-mask compare` gathers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sae_lens import SAE

from sae_mask_plugin.embedded.model import hub_reachable
from sae_mask_plugin.evals.common import SUMMARY_FILENAME
from sae_mask_plugin.files import write_json_atomic

STATUS_FILENAME = "scr_tpp_status.json"
UNREACHABLE = (
    "not run: SCR and TPP load their datasets (LabHC/bias_in_bios_class_set1, "
    "canrager/amazon_reviews_mcauley_1and5) from the Hugging Face hub, which this machine cannot reach"
)


def run_scr_and_tpp(
    sae_paths: Sequence[str | Path], evals: Sequence[str], model_name: str, out_dir: str | Path, device: str
) -> dict[str, str]:
    """Run `scr` and/or `tpp` through SAEBench on saved SAEs; returns (and records) each eval's status.

    Results go to `<out_dir>/<eval>/<sae name>_custom_sae_eval_results.json` (SAEBench's layout) and are listed
    in `<out_dir>/evaluation_summary.json` in the format of `sae_mask_plugin.evals.evaluate_saes`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not hub_reachable():
        status = dict.fromkeys(evals, UNREACHABLE)
        print(f"SCR/TPP {UNREACHABLE}")
    else:
        from sae_bench.evals.scr_and_tpp.eval_config import ScrAndTppEvalConfig
        from sae_bench.evals.scr_and_tpp.main import run_eval
        from sae_bench.sae_bench_utils.activation_collection import LLM_NAME_TO_BATCH_SIZE, LLM_NAME_TO_DTYPE
        from sae_bench.sae_bench_utils.general_utils import get_results_filepath

        selected = [(Path(path).name, SAE.load_from_disk(str(path), device=device)) for path in sae_paths]
        status = {}
        summary: dict[str, dict[str, object]] = {
            Path(path).name: {"path": str(path), "model_name": model_name, "evals": {}} for path in sae_paths
        }
        for name in evals:
            config = ScrAndTppEvalConfig(
                model_name=model_name,
                perform_scr=name == "scr",
                llm_batch_size=LLM_NAME_TO_BATCH_SIZE.get(model_name, 32),
                llm_dtype=LLM_NAME_TO_DTYPE.get(model_name, "float32"),
            )
            run_eval(config, selected, device, str(out), artifacts_path=str(out / "saebench_artifacts"))
            status[name] = f"done: results in {out / name}"
            for sae_name, entry in summary.items():
                result = get_results_filepath(str(out / name), sae_name, "custom_sae")
                entry["evals"][name] = {"status": "done", "result_path": result}  # type: ignore[index]
        write_json_atomic(out / SUMMARY_FILENAME, summary)
    write_json_atomic(out / STATUS_FILENAME, status)
    return status
