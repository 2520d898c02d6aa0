"""The export stage: the trained float model to ONNX, checked against PyTorch.

The graph has static shapes (a fixed batch): the Qualcomm backends refuse
dynamic dimensions. Inputs are int32 ``user_id`` and ``course_id`` of shape
``[batch]``; the output ``prediction`` is ``[batch, 1]`` in grade units.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from coursedlc import __version__
from coursedlc.dataset import Dataset
from coursedlc.errors import ParityError
from coursedlc.files import atomic_path, write_json
from coursedlc.model import GradeModel
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

INPUTS = ("user_id", "course_id")
OUTPUT = "prediction"
OPSET = 17


def export_onnx(model: GradeModel, path: Path, batch: int) -> None:
    """Write ``model`` as an ONNX graph with a static batch, then check it."""
    model.eval()
    example = (torch.zeros(batch, dtype=torch.int32),) * 2
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, but
        # it writes a smaller graph (no int64 casts around Gather) in a fraction
        # of the time, and the pinned torch still ships it.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example,
            str(tmp),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(tmp)
        proto.producer_name = "coursedlc"
        proto.producer_version = __version__
        onnx.helper.set_model_props(
            proto,
            {
                "grade_min": repr(float(model.grade_min)),
                "grade_max": repr(float(model.grade_min + model.grade_span)),
            },
        )
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp)


def with_batch(src: Path, dst: Path, batch: int) -> None:
    """Copy a static-batch model with a new batch size (inputs and outputs)."""
    proto = onnx.load(str(src))
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = batch
    # Intermediate shapes are re-inferred by the runtime from the new inputs.
    del proto.graph.value_info[:]
    onnx.save(proto, str(dst))


def onnx_predict(path: Path, users: np.ndarray, courses: np.ndarray) -> np.ndarray:
    """Run an ONNX model on the CPU over any number of pairs, in static batches."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return run_batched(session, users, courses)


def run_batched(session: Any, users: np.ndarray, courses: np.ndarray) -> np.ndarray:
    """Feed a static-batch session chunk by chunk; the last chunk is padded."""
    batch = session.get_inputs()[0].shape[0]
    out = np.empty(len(users), dtype=np.float64)
    for start in range(0, len(users), batch):
        u = users[start : start + batch]
        c = courses[start : start + batch]
        n = len(u)
        if n < batch:
            u = np.pad(u, (0, batch - n), mode="edge")
            c = np.pad(c, (0, batch - n), mode="edge")
        feed = {INPUTS[0]: u.astype(np.int32), INPUTS[1]: c.astype(np.int32)}
        out[start : start + n] = session.run(None, feed)[0][:n, 0]
    return out


def check_parity(
    onnx_path: Path,
    model: GradeModel,
    users: np.ndarray,
    courses: np.ndarray,
    tolerance: float,
    vocab: tuple[list[str], list[str]] | None = None,
) -> dict[str, Any]:
    """Compare onnxruntime with PyTorch on the given pairs.

    Raises:
        ParityError: the largest difference exceeds ``tolerance`` grade points.
    """
    from coursedlc.train import predict

    expected = predict(model, users, courses)
    got = onnx_predict(onnx_path, users, courses)
    diff = np.abs(expected - got)
    worst = int(np.argmax(diff))
    result = {
        "pairs": len(users),
        "max_abs_diff": float(diff[worst]),
        "mean_abs_diff": float(diff.mean()),
        "tolerance": tolerance,
    }
    if not diff[worst] <= tolerance:
        who = (
            f"student {vocab[0][users[worst]]!r}, course {vocab[1][courses[worst]]!r}"
            if vocab
            else f"user index {users[worst]}, course index {courses[worst]}"
        )
        raise ParityError(
            f"{onnx_path} disagrees with the PyTorch model: max |difference| "
            f"{diff[worst]:.6g} grade points > tolerance {tolerance:g} ({who}: "
            f"PyTorch {expected[worst]:.6f}, onnxruntime {got[worst]:.6f}; "
            f"mean |difference| {diff.mean():.6g} over {len(users)} pairs). The "
            "export is not the trained model; re-run `invoke train export`."
        )
    return result


def export(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Run the export stage: write model.onnx and its parity record."""
    from coursedlc.train import load_model

    model = load_model(layout)
    dataset = Dataset.load(layout)
    export_onnx(model, layout.onnx, settings.export_batch)

    users, courses, _ = _held_out(dataset, settings.parity_samples, settings.seed)
    try:
        parity = check_parity(
            layout.onnx,
            model,
            users,
            courses,
            settings.parity_tolerance,
            (dataset.students, dataset.courses),
        )
    except ParityError:
        layout.onnx.unlink(missing_ok=True)
        raise
    parity.update(batch=settings.export_batch, opset=OPSET)
    if settings.recommend_model:
        parity["recommend_model"] = export_recommend(layout, len(dataset.courses))
    write_json(layout.export_check, parity)
    log.info(
        "export: %s, batch %d, parity max |diff| %.2g over %d held-out pairs",
        layout.onnx,
        settings.export_batch,
        parity["max_abs_diff"],
        parity["pairs"],
    )
    return parity


def export_recommend(layout: Layout, courses: int) -> dict[str, Any]:
    """The exported graph with a batch of ``courses``, checked against it."""
    with atomic_path(layout.onnx_recommend) as tmp:
        with_batch(layout.onnx, tmp, courses)
        pairs = np.zeros(courses, dtype=np.int32), np.arange(courses, dtype=np.int32)
        diff = float(
            np.max(
                np.abs(onnx_predict(tmp, *pairs) - onnx_predict(layout.onnx, *pairs))
            )
        )
        if diff > 0:
            raise ParityError(
                f"the {courses}-course recommendation model disagrees with "
                f"{layout.onnx} by up to {diff:g}; re-run `invoke export`"
            )
    log.info("export: %s scores %d courses in one run", layout.onnx_recommend, courses)
    return {"file": layout.onnx_recommend.name, "batch": courses}


def _held_out(
    dataset: Dataset, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, courses, grades = dataset.part("test")
    if len(users) > limit:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), limit, False))
        users, courses, grades = users[pick], courses[pick], grades[pick]
    return users, courses, grades
