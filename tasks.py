"""Invoke tasks: thin glue from options and invoke.yaml to coursedlc's stages.

Run ``invoke --list`` for the tasks and ``invoke --help TASK`` for options.
Settings come from coursedlc's defaults, then the ``coursedlc:`` section of
invoke.yaml, then the command line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from invoke import Context, Exit, task

from coursedlc import logs, pipeline
from coursedlc.errors import CourseDLCError
from coursedlc.settings import Layout, Settings

COMMON = {
    "data": "grade file (JSON), default data/oulad-grades.json",
    "out": "build folder, default build/",
    "seed": "seed for split, initialisation and sampling",
    "verbose": "log DEBUG to the console",
}
PREPARE = {
    "grade_min": "lowest grade of the scale (default 0)",
    "grade_max": "highest grade of the scale (default 100)",
}
TRAIN = {
    "model": "fm (factorization) or concat-linear (the original model)",
    "epochs": "maximum epochs (early stopping may end sooner)",
    "dim": "factor dimension",
    "lr": "Adam learning rate",
    "weight_decay": "Adam weight decay",
    "batch_size": "training mini-batch size",
}
EXPORT = {"export_batch": "static batch of the exported model (default 1)"}
QUANTIZE = {
    "calibration_samples": "training pairs used for calibration",
    "activation_type": "uint8 or uint16",
    "weight_type": "uint8 or uint16",
}
VERIFY = {"int8_tolerance": "allowed relative RMSE loss of int8 vs float (0.02)"}


def _run(c: Context, stage: str, verbose: bool = False, **options: Any) -> None:
    try:
        settings = Settings.load(dict(c.config.get("coursedlc", {})), options)
        logs.configure(settings.out, verbose)
        if stage == "build":
            pipeline.build(settings)
        else:
            pipeline.run_stage(stage, settings)
    except CourseDLCError as exc:
        raise Exit(f"error: {exc}", code=1) from None


@task(help={**COMMON, **PREPARE})
def prepare(
    c, data=None, out=None, seed=None, grade_min=None, grade_max=None, verbose=False
):
    """Validate the grade file, encode ids, split train/validation/test."""
    _run(
        c,
        "prepare",
        verbose,
        data=data,
        out=out,
        seed=seed,
        grade_min=grade_min,
        grade_max=grade_max,
    )


@task(help={**COMMON, **TRAIN})
def train(
    c,
    out=None,
    seed=None,
    model=None,
    epochs=None,
    dim=None,
    lr=None,
    weight_decay=None,
    batch_size=None,
    verbose=False,
    data=None,
):
    """Train the grade model; write model.pt, metrics.json and the loss curve."""
    _run(
        c,
        "train",
        verbose,
        out=out,
        seed=seed,
        model=model,
        epochs=epochs,
        dim=dim,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
    )


@task(help={**COMMON, **EXPORT})
def export(c, out=None, export_batch=None, seed=None, verbose=False, data=None):
    """Export the trained model to ONNX and check it against PyTorch."""
    _run(c, "export", verbose, out=out, export_batch=export_batch, seed=seed)


@task(help=COMMON)
def convert(c, out=None, verbose=False, data=None, seed=None):
    """Convert the float ONNX model to dlc/model_float.dlc (embedded QNN)."""
    _run(c, "convert", verbose, out=out)


@task(help={**COMMON, **QUANTIZE})
def quantize(
    c,
    out=None,
    seed=None,
    calibration_samples=None,
    activation_type=None,
    weight_type=None,
    verbose=False,
    data=None,
):
    """Calibrate, write the QDQ model and dlc/model_quantized.dlc."""
    _run(
        c,
        "quantize",
        verbose,
        out=out,
        seed=seed,
        calibration_samples=calibration_samples,
        activation_type=activation_type,
        weight_type=weight_type,
    )


@task(help={**COMMON, **VERIFY})
def verify(c, out=None, int8_tolerance=None, verbose=False, data=None, seed=None):
    """Score the int8 model on the HTP emulator against the float model."""
    _run(c, "verify", verbose, out=out, int8_tolerance=int8_tolerance)


@task(help=COMMON)
def report(c, out=None, verbose=False, data=None, seed=None):
    """Write report.md and report.json from the stages' records."""
    _run(c, "report", verbose, out=out)


@task(help={**COMMON, **PREPARE, **TRAIN, **EXPORT, **QUANTIZE, **VERIFY})
def build(
    c,
    data=None,
    out=None,
    seed=None,
    grade_min=None,
    grade_max=None,
    model=None,
    epochs=None,
    dim=None,
    lr=None,
    weight_decay=None,
    batch_size=None,
    export_batch=None,
    calibration_samples=None,
    activation_type=None,
    weight_type=None,
    int8_tolerance=None,
    verbose=False,
):
    """Run every stage: data to float and int8 DLC, verified, with a report."""
    _run(
        c,
        "build",
        verbose,
        data=data,
        out=out,
        seed=seed,
        grade_min=grade_min,
        grade_max=grade_max,
        model=model,
        epochs=epochs,
        dim=dim,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        export_batch=export_batch,
        calibration_samples=calibration_samples,
        activation_type=activation_type,
        weight_type=weight_type,
        int8_tolerance=int8_tolerance,
    )


@task(help={"out": "build folder to delete, default build/"})
def clean(c, out=None):
    """Delete the build folder (only if coursedlc made it)."""
    try:
        layout = Layout(
            Settings.load(dict(c.config.get("coursedlc", {})), {"out": out}).out
        )
    except CourseDLCError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    if not layout.out.exists():
        return
    if not layout.marker.exists():
        raise Exit(
            f"error: {layout.out} was not made by coursedlc (no "
            f"{layout.marker.name}); delete it by hand",
            code=1,
        )
    shutil.rmtree(layout.out)
    print(f"removed {layout.out}")


@task(
    help={
        "k": "only tests matching this expression (pytest -k)",
        "fast": "skip tests marked slow",
    }
)
def test(c, k=None, fast=False):
    """Run ruff, mypy and the test suite."""
    steps = [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
        [sys.executable, "-m", "pytest"]
        + (["-k", k] if k else [])
        + (["-m", "not slow"] if fast else []),
    ]
    for argv in steps:
        print("$", " ".join(argv), flush=True)
        # Our own interpreter and fixed arguments: no shell, nothing from input.
        run = subprocess.run(argv, cwd=Path(__file__).parent, check=False)  # noqa: S603
        code = run.returncode
        if code:
            raise Exit(code=code)
