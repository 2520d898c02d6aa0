"""Build settings and the layout of the build folder.

Defaults live here once; ``invoke.yaml`` and the command line override them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from coursedlc.errors import ConfigError
from coursedlc.scale import US_LETTERS

ModelKind = Literal["fm", "concat-linear"]
QuantType = Literal["uint8", "uint16"]
BackendKind = Literal["auto", "sdk", "embedded"]
RunnerKind = Literal["local", "docker", "auto"]
Calibration = Literal["min-max", "sqnr", "entropy", "mse", "percentile"]
OptimizerKind = Literal["auto", "als", "adam"]


class Settings(BaseModel):
    """Every parameter of a build, validated once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path = Path("data/oulad-grades.json")
    out: Path = Path("build")

    # The scale is declared, never guessed from the data: a file holding only
    # grades 60-90 on a 0-100 scale must not be stretched to 0-100.
    grade_min: float = 0.0
    grade_max: float = 100.0
    # "letter": grades are letters, mapped to points by letter_points; the
    # scale is then that of the points and grade_min/grade_max are unused.
    grade_scale: Literal["numeric", "letter"] = "numeric"
    letter_points: dict[str, float] = Field(default_factory=lambda: dict(US_LETTERS))
    # Column names of a CSV or Parquet grade table.
    column_student: str = "student"
    column_semester: str = "semester"
    column_course: str = "course"
    column_grade: str = "grade"

    seed: int = 0
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)

    # Where the train stage runs: here, in the training container, or in the
    # container when an engine answers. Local by default: building the image
    # takes minutes, and the README's first command must work without Docker.
    runner: RunnerKind = "local"
    base_image: str | None = None

    model: ModelKind = "fm"
    dim: int = Field(16, ge=1, le=1024)
    epochs: int = Field(200, ge=1)
    # auto: alternating least squares for fm (closed-form sweeps), Adam for
    # concat-linear, which has no closed form.
    optimizer: OptimizerKind = "auto"
    # ALS: L2 strengths tried, on grades normalised to [0, 1] and in units of
    # sqrt(grades per student) + sqrt(grades per course); the one with the
    # best validation RMSE is kept.
    l2: tuple[float, ...] = (0.015, 0.03, 0.06)
    # ALS: conjugate-gradient steps per sweep on sides with many rows; 0 solves
    # every side exactly.
    cg_steps: int = Field(3, ge=0)
    # Adam only.
    batch_size: int = Field(4096, ge=1)
    lr: float = Field(0.005, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    # Epochs without progress before training stops; unset: 3 for ALS, whose
    # sweeps improve smoothly, 8 for Adam, whose epochs are noisier.
    patience: int | None = Field(None, ge=1)

    export_batch: int = Field(1, ge=1)
    # Also export (and convert, quantize) a model whose batch is the number of
    # courses: one inference scores every course for a student.
    recommend_model: bool = True
    parity_samples: int = Field(2000, ge=1)
    parity_tolerance: float = Field(1e-3, gt=0)

    calibration_samples: int = Field(2048, ge=1)
    activation_type: QuantType = "uint8"
    weight_type: QuantType = "uint8"
    soc_model: str = "60"

    # Which Qualcomm toolchain makes the DLCs: auto = an installed QAIRT SDK
    # when one is found, else the embedded onnxruntime-qnn backend.
    backend: BackendKind = "auto"
    sdk_root: Path | None = None
    sdk_venv: Path | None = None
    # The SDK's Python tools load bindings built for one Python (3.10 for 2.3x).
    sdk_python: str = "3.10"
    bias_bitwidth: int = 8
    per_channel: bool = False
    act_calibration: Calibration = "min-max"
    native_input_files: bool = False
    tool_timeout: float = Field(3600.0, gt=0)

    verify_batch: int = Field(512, ge=1)
    int8_tolerance: float = Field(0.02, ge=0)

    @field_validator("letter_points", mode="before")
    @classmethod
    def _letters_from_text(cls, value: Any) -> Any:
        # From the command line the mapping arrives as JSON text.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("l2", mode="before")
    @classmethod
    def _l2_from_text(cls, value: Any) -> Any:
        # From the command line: "1" or "0.3,1,3".
        if isinstance(value, str):
            return tuple(part for part in value.strip("()[] ").split(",") if part)
        return (value,) if isinstance(value, int | float) else value

    @field_validator("l2")
    @classmethod
    def _l2_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not v > 0 for v in value):
            raise ValueError(f"l2 is {value}; give one or more strengths above 0")
        return value

    @property
    def solver(self) -> Literal["als", "adam"]:
        """The optimizer that trains ``model``, with auto resolved."""
        if self.optimizer == "auto":
            return "als" if self.model == "fm" else "adam"
        return self.optimizer

    @property
    def stop_after(self) -> int:
        """``patience``, with its optimizer-dependent default resolved."""
        if self.patience is not None:
            return self.patience
        return 3 if self.solver == "als" else 8

    @model_validator(mode="after")
    def _check_scale(self) -> Settings:
        if self.optimizer == "als" and self.model != "fm":
            raise ValueError(
                f"optimizer als fits the fm model only, not {self.model}; "
                "use optimizer adam or auto"
            )
        if self.bias_bitwidth not in (8, 32):
            raise ValueError(f"bias_bitwidth is {self.bias_bitwidth}; use 8 or 32")
        if not self.grade_min < self.grade_max:
            raise ValueError(
                f"grade_min ({self.grade_min}) must be below grade_max "
                f"({self.grade_max})"
            )
        return self

    @classmethod
    def load(cls, *layers: dict[str, Any] | None) -> Settings:
        """Merge layers of settings, later ones winning; ``None`` values skipped.

        Keys may use dashes or underscores (``grade-min`` or ``grade_min``).

        Raises:
            ConfigError: a key is unknown or a value has the wrong type or range.
        """
        merged: dict[str, Any] = {}
        for layer in layers:
            for key, value in (layer or {}).items():
                if value is not None:
                    merged[key.replace("-", "_")] = value
        try:
            return cls(**merged)
        except ValidationError as exc:
            # A check across settings has no single key and its input is the
            # whole mapping: its message names the settings instead.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}={err.get('input')!r}: "
                f"{err['msg']}"
                if err["loc"]
                else err["msg"]
                for err in exc.errors()
            )
            raise ConfigError(
                f"invalid settings: {problems}. Fix the command-line option or the "
                "coursedlc section of invoke.yaml."
            ) from None


def environment_layer(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Settings taken from environment variables (below the command line)."""
    env = dict(os.environ) if env is None else env
    return {
        "sdk_root": env.get("QAIRT_SDK_ROOT") or None,
        "base_image": env.get("COURSEDLC_BASE_IMAGE") or None,
    }


class Layout:
    """Where each stage reads and writes, under one build folder."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.data_dir = self.out / "data"
        self.dataset = self.data_dir / "dataset.npz"
        self.summary = self.data_dir / "summary.json"
        self.model_dir = self.out / "model"
        self.vocab = self.model_dir / "vocab.json"
        self.weights = self.model_dir / "model.pt"
        self.metrics = self.model_dir / "metrics.json"
        self.loss_curve = self.model_dir / "loss_curve.png"
        self.onnx_dir = self.out / "onnx"
        self.onnx = self.onnx_dir / "model.onnx"
        self.export_check = self.onnx_dir / "parity.json"
        self.qdq = self.onnx_dir / "model_qdq.onnx"
        self.onnx_recommend = self.onnx_dir / "model_recommend.onnx"
        self.qdq_recommend = self.onnx_dir / "model_recommend_qdq.onnx"
        self.calibration = self.onnx_dir / "calibration.json"
        self.dlc_dir = self.out / "dlc"
        self.float_dlc = self.dlc_dir / "model_float.dlc"
        self.int8_dlc = self.dlc_dir / "model_quantized.dlc"
        self.float_recommend_dlc = self.dlc_dir / "model_recommend_float.dlc"
        self.int8_recommend_dlc = self.dlc_dir / "model_recommend_quantized.dlc"
        self.float_dlc_info = self.dlc_dir / "model_float.json"
        self.int8_dlc_info = self.dlc_dir / "model_quantized.json"
        self.verify = self.out / "verify.json"
        self.predictions = self.out / "test_predictions.npy"
        self.last_build = self.out / "last_build.json"
        self.report_html = self.out / "report.html"
        self.report_md = self.out / "report.md"
        self.report_json = self.out / "report.json"
        self.logs = self.out / "logs"
        self.sdk_dir = self.out / "sdk"
        self.marker = self.out / ".coursedlc-build"
