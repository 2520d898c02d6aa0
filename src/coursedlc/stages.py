"""What each stage reads, writes and depends on, declared once.

The pipeline decides from these declarations whether a stage is up to date:
its input files, the settings that shape its outputs, the source of the modules
that implement it and the versions of the packages it runs on. Declarations
import nothing heavy, so deciding is cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

ARRAYS = ("user", "course", "grade", "split")
BACKEND_PARAMS = ("backend", "sdk_root", "sdk_venv", "sdk_python", "soc_model")


@dataclass(frozen=True)
class Stage:
    """One stage: how to run it and what it depends on."""

    name: str
    run: Callable[[Layout, Settings], Any]
    inputs: Callable[[Layout, Settings], list[Path]]
    outputs: Callable[[Layout, Settings], list[Path]]
    params: tuple[str, ...]
    code: tuple[str, ...]
    packages: tuple[str, ...]


def _arrays(layout: Layout) -> list[Path]:
    return [layout.data_dir / f"{name}.npy" for name in ARRAYS]


def _embedded(settings: Settings) -> bool:
    from coursedlc.backend import resolve

    return resolve(settings).sdk is None


def _recommend_dlcs(settings: Settings) -> bool:
    return settings.recommend_model and _embedded(settings)


def _run_prepare(layout: Layout, s: Settings) -> Any:
    from coursedlc.dataset import prepare
    from coursedlc.tables import Columns

    return prepare(
        s.data,
        layout,
        s.grade_min,
        s.grade_max,
        s.seed,
        s.validation_fraction,
        s.test_fraction,
        letters=s.letter_points if s.grade_scale == "letter" else None,
        columns=Columns(
            s.column_student, s.column_semester, s.column_course, s.column_grade
        ),
    )


def _run_train(layout: Layout, s: Settings) -> Any:
    from coursedlc import container
    from coursedlc.train import train

    if s.runner == "docker" or (s.runner == "auto" and container.engine_answers()):
        from coursedlc.files import read_json, write_json

        tag = container.build_image(layout, s.base_image)
        container.run_train(layout, s, tag)
        metrics = read_json(layout.metrics)
        metrics["training"]["runner"] = f"container {tag}"
        write_json(layout.metrics, metrics)
        return metrics
    if s.runner == "auto":
        log.info("train: no container engine answers; training locally")
    return train(layout, s)


def _run_export(layout: Layout, s: Settings) -> Any:
    from coursedlc.export import export

    return export(layout, s)


def _run_convert(layout: Layout, s: Settings) -> Any:
    from coursedlc.convert import convert

    return convert(layout, s)


def _run_quantize(layout: Layout, s: Settings) -> Any:
    from coursedlc.quantize import quantize

    return quantize(layout, s)


def _run_verify(layout: Layout, s: Settings) -> Any:
    from coursedlc.verify import verify

    return verify(layout, s)


def _run_report(layout: Layout, s: Settings) -> Any:
    from coursedlc.report import write_report

    return write_report(layout, s)


QNN = ("onnxruntime", "onnxruntime-qnn")
STAGES: tuple[Stage, ...] = (
    Stage(
        "prepare",
        _run_prepare,
        inputs=lambda lay, s: [s.data],
        outputs=lambda lay, s: [*_arrays(lay), lay.vocab, lay.summary],
        params=(
            "grade_min",
            "grade_max",
            "grade_scale",
            "letter_points",
            "column_student",
            "column_semester",
            "column_course",
            "column_grade",
            "seed",
            "validation_fraction",
            "test_fraction",
        ),
        code=("dataset", "files", "scale", "tables"),
        packages=("numpy",),
    ),
    Stage(
        "train",
        _run_train,
        inputs=lambda lay, s: [*_arrays(lay), lay.vocab],
        outputs=lambda lay, s: [lay.weights, lay.metrics, lay.loss_curve],
        # The runner is left out: a container run gives the same bytes.
        params=(
            "model",
            "dim",
            "epochs",
            "optimizer",
            "l2",
            "cg_steps",
            "batch_size",
            "lr",
            "weight_decay",
            "patience",
            "seed",
        ),
        code=("train", "als", "model", "files"),
        packages=("torch", "numpy", "matplotlib"),
    ),
    Stage(
        "export",
        _run_export,
        inputs=lambda lay, s: [lay.weights, lay.metrics, *_arrays(lay), lay.vocab],
        outputs=lambda lay, s: (
            [lay.onnx, lay.export_check]
            + ([lay.onnx_recommend] if s.recommend_model else [])
        ),
        params=(
            "export_batch",
            "parity_samples",
            "parity_tolerance",
            "seed",
            "recommend_model",
        ),
        code=("export", "model", "train", "files"),
        packages=("torch", "onnx", "onnxruntime"),
    ),
    Stage(
        "convert",
        _run_convert,
        inputs=lambda lay, s: (
            [lay.onnx] + ([lay.onnx_recommend] if s.recommend_model else [])
        ),
        outputs=lambda lay, s: (
            [lay.float_dlc, lay.float_dlc_info]
            + ([lay.float_recommend_dlc] if _recommend_dlcs(s) else [])
        ),
        params=(*BACKEND_PARAMS, "tool_timeout", "recommend_model"),
        code=("convert", "qnn", "dlc", "sdk", "sdk_backend", "backend", "tools"),
        packages=QNN,
    ),
    Stage(
        "quantize",
        _run_quantize,
        inputs=lambda lay, s: (
            [lay.onnx, *_arrays(lay)] + ([] if _embedded(s) else [lay.float_dlc])
        ),
        outputs=lambda lay, s: (
            [lay.int8_dlc, lay.int8_dlc_info, lay.calibration]
            + ([lay.qdq] if _embedded(s) else [])
            + (
                [lay.qdq_recommend, lay.int8_recommend_dlc]
                if _recommend_dlcs(s)
                else []
            )
        ),
        params=(
            *BACKEND_PARAMS,
            "recommend_model",
            "calibration_samples",
            "activation_type",
            "weight_type",
            "seed",
            "export_batch",
            "bias_bitwidth",
            "per_channel",
            "act_calibration",
            "native_input_files",
        ),
        code=(
            "quantize",
            "qnn",
            "dlc",
            "sdk",
            "sdk_backend",
            "backend",
            "tools",
            "export",
        ),
        packages=(*QNN, "onnx"),
    ),
    Stage(
        "verify",
        _run_verify,
        inputs=lambda lay, s: (
            [lay.onnx, lay.int8_dlc, *_arrays(lay)]
            + ([lay.qdq] if _embedded(s) else [])
        ),
        outputs=lambda lay, s: [lay.verify, lay.predictions],
        params=(*BACKEND_PARAMS, "int8_tolerance", "verify_batch"),
        code=("verify", "qnn", "sdk_backend", "backend", "export"),
        packages=(*QNN, "onnx"),
    ),
    Stage(
        "report",
        _run_report,
        inputs=lambda lay, s: [
            lay.summary,
            lay.metrics,
            lay.export_check,
            lay.calibration,
            lay.float_dlc_info,
            lay.int8_dlc_info,
            lay.verify,
            lay.weights,
            lay.vocab,
            lay.loss_curve,
            lay.onnx,
            lay.float_dlc,
            lay.int8_dlc,
            lay.predictions,
        ],
        outputs=lambda lay, s: [lay.report_md, lay.report_json, lay.report_html],
        params=(),
        code=("report", "report_html"),
        packages=("matplotlib",),
    ),
)
BY_NAME = {stage.name: stage for stage in STAGES}
