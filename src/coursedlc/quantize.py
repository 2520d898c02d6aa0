"""The quantize stage: calibrate on real pairs, make a QDQ model, write the int8 DLC.

Calibration uses a sample of (student, course) pairs from the training split,
so activation ranges are those of real inputs (the original workflow calibrated
on a single all-zero input).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from coursedlc import qnn
from coursedlc.backend import resolve
from coursedlc.dataset import Dataset
from coursedlc.errors import StageInputError
from coursedlc.export import INPUTS
from coursedlc.files import atomic_path, write_json
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)


def calibration_pairs(
    dataset: Dataset, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of distinct training pairs (all of them if fewer)."""
    users, courses, _ = dataset.part("train")
    if len(users) > count:
        pick = np.sort(np.random.default_rng(seed).choice(len(users), count, False))
        users, courses = users[pick], courses[pick]
    return users, courses


def make_qdq(
    model: Path,
    out: Path,
    users: np.ndarray,
    courses: np.ndarray,
    batch: int,
    activation_type: str,
    weight_type: str,
) -> None:
    """Quantize ``model`` to a QDQ model with the QNN configuration."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    types = {"uint8": QuantType.QUInt8, "uint16": QuantType.QUInt16}

    class Pairs(CalibrationDataReader):
        def __init__(self) -> None:
            # Whole batches only: the graph's batch is static.
            full = len(users) - len(users) % batch or len(users)
            self.feeds = iter(
                {
                    INPUTS[0]: np.resize(users[i : i + batch], batch).astype(np.int32),
                    INPUTS[1]: np.resize(courses[i : i + batch], batch).astype(
                        np.int32
                    ),
                }
                for i in range(0, full, batch)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    config = get_qnn_qdq_config(
        str(model),
        Pairs(),
        activation_type=types[activation_type],
        weight_type=types[weight_type],
    )
    with atomic_path(out) as tmp:
        quantize(str(model), str(tmp), config)


def _recommend_dlc(layout: Layout, settings: Settings, courses: int) -> dict[str, Any]:
    # The QDQ graph with only its batch changed keeps the calibrated encodings.
    from coursedlc.export import with_batch

    with atomic_path(layout.qdq_recommend) as tmp:
        with_batch(layout.qdq, tmp, courses)
    return qnn.write_dlc(
        layout.qdq_recommend,
        layout.int8_recommend_dlc,
        settings.soc_model,
        layout.logs / "quantize.log",
    )


def quantize(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Run the quantize stage: write the QDQ model and the int8 DLC."""
    if not layout.onnx.exists():
        raise StageInputError(f"no {layout.onnx}: run `invoke export` first")
    dataset = Dataset.load(layout)
    users, courses = calibration_pairs(
        dataset, settings.calibration_samples, settings.seed
    )
    backend = resolve(settings)
    log.info(
        "quantize: calibrating %s/%s on %d training pairs",
        settings.activation_type,
        settings.weight_type,
        len(users),
    )
    record: dict[str, Any] = {
        "pairs": len(users),
        "distinct_students": int(np.unique(users).size),
        "distinct_courses": int(np.unique(courses).size),
        "activation_type": settings.activation_type,
        "weight_type": settings.weight_type,
    }
    if backend.sdk is not None:
        from coursedlc import sdk_backend

        info = sdk_backend.quantize(layout, settings, backend, users, courses)
        record.update(
            bias_bitwidth=settings.bias_bitwidth,
            per_channel=settings.per_channel,
            act_calibration=settings.act_calibration,
        )
        # The SDK backend does not make a QDQ model; an older one would mislead.
        layout.qdq.unlink(missing_ok=True)
    else:
        make_qdq(
            layout.onnx,
            layout.qdq,
            users,
            courses,
            settings.export_batch,
            settings.activation_type,
            settings.weight_type,
        )
        info = qnn.write_dlc(
            layout.qdq,
            layout.int8_dlc,
            settings.soc_model,
            layout.logs / "quantize.log",
        )
        info["made_by"] = backend.describe()
        if settings.recommend_model:
            info["recommend"] = _recommend_dlc(layout, settings, len(dataset.courses))
    write_json(layout.calibration, record)
    write_json(layout.int8_dlc_info, info)
    log.info(
        "quantize: %s, %d bytes, ops %s", layout.int8_dlc, info["bytes"], info["ops"]
    )
    return info
