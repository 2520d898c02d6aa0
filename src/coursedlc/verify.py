"""The verify stage: the int8 model on the HTP emulator against the float model.

The test split is scored in large static batches: the QDQ graph is copied with
only its batch dimension changed, so weights and quantization encodings are the
ones in the int8 DLC, and the emulator's per-call overhead is paid once per
batch instead of once per pair.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from coursedlc import qnn
from coursedlc.backend import resolve
from coursedlc.dataset import Dataset
from coursedlc.errors import AccuracyError, StageInputError
from coursedlc.export import onnx_predict, run_batched, with_batch
from coursedlc.files import atomic_path, write_json
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)


def htp_predict(
    qdq: Path,
    users: np.ndarray,
    courses: np.ndarray,
    batch: int,
    soc_model: str,
    log_path: Path,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Run a QDQ model on the HTP emulator; return predictions and placement."""
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=qdq.parent) as tmp:
        batched = Path(tmp) / "model_qdq_batched.onnx"
        with_batch(qdq, batched, min(batch, max(len(users), 1)))
        with qnn.native_output_to(log_path):
            sess = qnn.session(batched, qnn.htp_options(soc_model))
            placed = qnn.placement(sess, qnn.graph_outputs(batched))
            predictions = run_batched(sess, users, courses)
        del sess
    return predictions, placed


def float_predict(
    model: Path, users: np.ndarray, courses: np.ndarray, batch: int
) -> np.ndarray:
    """Run the float model on the CPU in the same batches."""
    with tempfile.TemporaryDirectory(prefix=".verify-", dir=model.parent) as tmp:
        batched = Path(tmp) / "model_batched.onnx"
        with_batch(model, batched, min(batch, max(len(users), 1)))
        return onnx_predict(batched, users, courses)


def verify(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Run the verify stage and write ``verify.json``.

    Raises:
        AccuracyError: int8 RMSE exceeds float RMSE by more than the tolerance.
    """
    backend = resolve(settings)
    needed = [(layout.onnx, "export"), (layout.int8_dlc, "quantize")]
    if backend.sdk is None:
        needed.append((layout.qdq, "quantize"))
    for path, stage in needed:
        if not path.exists():
            raise StageInputError(f"no {path}: run `invoke {stage}` first")
    users, courses, grades = Dataset.load(layout).part("test")
    float_pred = float_predict(layout.onnx, users, courses, settings.verify_batch)
    float_rmse = float(np.sqrt(np.mean((float_pred - grades) ** 2)))
    result: dict[str, Any] = {
        "pairs": len(grades),
        "float_rmse": float_rmse,
        "tolerance": settings.int8_tolerance,
        **backend.describe(),
    }

    int8_pred: np.ndarray | None
    if backend.sdk is None:
        int8_pred, placed = htp_predict(
            layout.qdq,
            users,
            courses,
            settings.verify_batch,
            settings.soc_model,
            layout.logs / "verify.log",
        )
        result.update(
            int8_runtime="QNN HTP emulator (onnxruntime-qnn)", placement=placed
        )
    else:
        from coursedlc import sdk_backend

        int8_pred = sdk_backend.net_run(layout, settings, backend, users, courses)
        result["int8_runtime"] = "snpe-net-run (CPU runtime)"

    if int8_pred is None:
        result.update(
            int8_executed=False,
            int8_rmse=None,
            note=(
                f"the QAIRT SDK {backend.sdk.version if backend.sdk else ''} has no "
                "snpe-net-run for this host: the int8 DLC was not executed"
            ),
        )
        log.warning("verify: %s", result["note"])
    else:
        _compare(result, float_pred, int8_pred, grades, settings.int8_tolerance)

    # Per-pair predictions for the report's plots: float, int8 (NaN when the
    # int8 DLC was not executed), in the test split's order.
    both = np.stack(
        [float_pred, float_pred * np.nan if int8_pred is None else int8_pred], 1
    )
    with atomic_path(layout.predictions) as tmp, open(tmp, "wb") as handle:
        np.save(handle, both, allow_pickle=False)
    write_json(layout.verify, result)
    return result


def _compare(
    result: dict[str, Any],
    float_pred: np.ndarray,
    int8_pred: np.ndarray,
    grades: np.ndarray,
    tolerance: float,
) -> None:
    float_rmse = result["float_rmse"]
    int8_rmse = float(np.sqrt(np.mean((int8_pred - grades) ** 2)))
    limit = float_rmse * (1 + tolerance)
    result.update(
        int8_executed=True,
        int8_rmse=int8_rmse,
        int8_vs_float_ratio=int8_rmse / float_rmse if float_rmse else None,
        max_abs_float_int8=float(np.max(np.abs(float_pred - int8_pred))),
        mean_abs_float_int8=float(np.mean(np.abs(float_pred - int8_pred))),
    )
    log.info(
        "verify: %d test pairs, float RMSE %.4f, int8 RMSE %.4f (limit %.4f), "
        "max |float - int8| %.4f",
        len(grades),
        float_rmse,
        int8_rmse,
        limit,
        result["max_abs_float_int8"],
    )
    if int8_rmse > limit:
        raise AccuracyError(
            f"int8 RMSE {int8_rmse:.4f} exceeds float RMSE {float_rmse:.4f} by more "
            f"than {tolerance:.1%} (limit {limit:.4f}) on {len(grades)} test "
            "pairs. Try --activation-type uint16, more calibration samples, or "
            "raise --int8-tolerance if this loss is acceptable."
        )
