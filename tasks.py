"""Invoke tasks: thin glue from options and invoke.yaml to coursedlc's stages.

Run ``invoke --list`` for the tasks and ``invoke --help TASK`` for options.
Settings come from coursedlc's defaults, then the ``coursedlc:`` section of
invoke.yaml, then the command line.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from invoke import Context, Exit
from invoke import task as invoke_task

# This checkout's own code, even when another checkout is the one installed
# (pip's editable install points at whichever checkout ran it last).
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from coursedlc import logs, pipeline
from coursedlc.errors import CourseDLCError, SdkError
from coursedlc.settings import Layout, Settings, environment_layer

ROOT = Path(__file__).resolve().parent


def task(*args: Any, **kwargs: Any) -> Any:
    """Invoke's task decorator without automatic short flags.

    Automatic short flags collide here (``-h`` would be ``--weight-type``);
    every option is spelled out instead.
    """
    return invoke_task(*args, auto_shortflags=False, **kwargs)


COMMON = {
    "data": "grade file: .json, .csv or .parquet (default data/oulad-grades.json)",
    "out": "build folder, default build/",
    "seed": "seed for split, initialisation and sampling",
    "verbose": "log DEBUG to the console",
}
PREPARE = {
    "grade_min": "lowest grade of the scale (default 0)",
    "grade_max": "highest grade of the scale (default 100)",
    "grade_scale": "numeric (default) or letter (A+ ... F, points from letter_points)",
    "column_student": "CSV/Parquet: column of the student id (default student)",
    "column_semester": "CSV/Parquet: column of the semester (default semester)",
    "column_course": "CSV/Parquet: column of the course id (default course)",
    "column_grade": "CSV/Parquet: column of the grade (default grade)",
}
TRAIN = {
    "runner": "local (default), docker (the training container) or auto",
    "base_image": "base of the training image (default python:3.11-slim-bookworm)",
    "model": "fm (factorization) or concat-linear (the original model)",
    "epochs": "maximum epochs (early stopping may end sooner)",
    "dim": "factor dimension",
    "optimizer": "auto (als for fm, adam for concat-linear), als or adam",
    "l2": "ALS: L2 strengths to try, comma-separated (default 0.015,0.03,0.06)",
    "cg_steps": "ALS: conjugate-gradient steps per sweep, 0 = exact (default 3)",
    "patience": "epochs without progress before stopping (default 3 ALS, 8 Adam)",
    "lr": "Adam learning rate",
    "weight_decay": "Adam weight decay",
    "batch_size": "Adam mini-batch size",
}
EXPORT = {"export_batch": "static batch of the exported model (default 1)"}
QUANTIZE = {
    "calibration_samples": "training pairs used for calibration",
    "activation_type": "uint8 or uint16",
    "weight_type": "uint8 or uint16",
}
VERIFY = {"int8_tolerance": "allowed relative RMSE loss of int8 vs float (0.02)"}
BACKEND = {
    "backend": "auto (SDK if one is found), sdk or embedded (onnxruntime-qnn)",
    "sdk_root": "QAIRT SDK root (else QAIRT_SDK_ROOT, invoke.yaml, default places)",
    "sdk_venv": "the SDK's Python venv (default <sdk>/bin/venv)",
}
SDK_QUANT = {
    "bias_bitwidth": "SDK quantizer bias bitwidth: 8 or 32",
    "per_channel": "SDK quantizer: per-channel weight quantization",
    "act_calibration": "SDK quantizer: min-max, sqnr, entropy, mse or percentile",
    "native_input_files": "SDK quantizer: raw calibration files as int32",
}


@contextlib.contextmanager
def _exit_on_error() -> Iterator[None]:
    """Turn coursedlc's errors into Invoke's Exit: the message and a non-zero code."""
    try:
        yield
    except CourseDLCError as exc:
        raise Exit(f"error: {exc}", code=exc.exit_code) from None


def _settings(c: Context, options: dict[str, Any]) -> Settings:
    # Precedence: defaults < invoke.yaml < environment (QAIRT_SDK_ROOT) < options.
    return Settings.load(
        dict(c.config.get("coursedlc", {})), environment_layer(), options
    )


def _run(
    c: Context,
    stage: str,
    verbose: bool = False,
    force: bool = False,
    force_stages: tuple[str, ...] = (),
    **options: Any,
) -> None:
    with _exit_on_error():
        settings = _settings(c, options)
        logs.configure(settings.out, verbose)
        pipeline.run(stage, settings, force, force_stages)


@task(help={**COMMON, **PREPARE})
def prepare(
    c,
    data=None,
    out=None,
    seed=None,
    grade_min=None,
    grade_max=None,
    grade_scale=None,
    column_student=None,
    column_semester=None,
    column_course=None,
    column_grade=None,
    verbose=False,
):
    """Validate the grade file, encode ids, split by seed."""
    _run(
        c,
        "prepare",
        verbose,
        data=data,
        out=out,
        seed=seed,
        grade_min=grade_min,
        grade_max=grade_max,
        grade_scale=grade_scale,
        column_student=column_student,
        column_semester=column_semester,
        column_course=column_course,
        column_grade=column_grade,
    )


@task(help={**COMMON, **TRAIN})
def train(
    c,
    out=None,
    runner=None,
    base_image=None,
    seed=None,
    model=None,
    epochs=None,
    dim=None,
    optimizer=None,
    l2=None,
    cg_steps=None,
    patience=None,
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
        runner=runner,
        base_image=base_image,
        seed=seed,
        model=model,
        epochs=epochs,
        dim=dim,
        optimizer=optimizer,
        l2=l2,
        cg_steps=cg_steps,
        patience=patience,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
    )


@task(help={**COMMON, **EXPORT})
def export(c, out=None, export_batch=None, seed=None, verbose=False, data=None):
    """Export the trained model to ONNX and check it against PyTorch."""
    _run(c, "export", verbose, out=out, export_batch=export_batch, seed=seed)


@task(help={**COMMON, **BACKEND})
def convert(
    c,
    out=None,
    backend=None,
    sdk_root=None,
    sdk_venv=None,
    verbose=False,
    data=None,
    seed=None,
):
    """Convert the float ONNX model to dlc/model_float.dlc."""
    _run(
        c,
        "convert",
        verbose,
        out=out,
        backend=backend,
        sdk_root=sdk_root,
        sdk_venv=sdk_venv,
    )


@task(help={**COMMON, **QUANTIZE, **BACKEND, **SDK_QUANT})
def quantize(
    c,
    out=None,
    seed=None,
    calibration_samples=None,
    activation_type=None,
    weight_type=None,
    backend=None,
    sdk_root=None,
    sdk_venv=None,
    bias_bitwidth=None,
    per_channel=False,
    act_calibration=None,
    native_input_files=False,
    verbose=False,
    data=None,
):
    """Calibrate on training pairs and write dlc/model_quantized.dlc."""
    _run(
        c,
        "quantize",
        verbose,
        out=out,
        seed=seed,
        calibration_samples=calibration_samples,
        activation_type=activation_type,
        weight_type=weight_type,
        backend=backend,
        sdk_root=sdk_root,
        sdk_venv=sdk_venv,
        bias_bitwidth=bias_bitwidth,
        per_channel=per_channel or None,
        act_calibration=act_calibration,
        native_input_files=native_input_files or None,
    )


@task(help={**COMMON, **VERIFY, **BACKEND})
def verify(
    c,
    out=None,
    int8_tolerance=None,
    backend=None,
    sdk_root=None,
    sdk_venv=None,
    verbose=False,
    data=None,
    seed=None,
):
    """Score the int8 model against the float model on the test split."""
    _run(
        c,
        "verify",
        verbose,
        out=out,
        int8_tolerance=int8_tolerance,
        backend=backend,
        sdk_root=sdk_root,
        sdk_venv=sdk_venv,
    )


@task(help={**COMMON, "compare": "another build folder: print metric differences"})
def report(c, out=None, compare=None, verbose=False, data=None, seed=None):
    """Write report.md, report.html and report.json; or compare two builds."""
    if compare is None:
        _run(c, "report", verbose, out=out)
        return
    from coursedlc.report import compare as diff
    from coursedlc.report import format_comparison

    with _exit_on_error():
        ours = _settings(c, {"out": out}).out
        print(format_comparison(diff(ours, Path(compare)), ours, Path(compare)))


@task(
    iterable=["force_stage"],
    help={
        "force": "re-run every stage, up to date or not",
        "force_stage": "re-run this stage (repeat the option for more)",
        **COMMON,
        **PREPARE,
        **TRAIN,
        **EXPORT,
        **QUANTIZE,
        **VERIFY,
        **BACKEND,
        **SDK_QUANT,
    },
)
def build(
    c,
    data=None,
    out=None,
    seed=None,
    grade_min=None,
    grade_max=None,
    grade_scale=None,
    column_student=None,
    column_semester=None,
    column_course=None,
    column_grade=None,
    model=None,
    runner=None,
    base_image=None,
    epochs=None,
    dim=None,
    optimizer=None,
    l2=None,
    cg_steps=None,
    patience=None,
    lr=None,
    weight_decay=None,
    batch_size=None,
    export_batch=None,
    calibration_samples=None,
    activation_type=None,
    weight_type=None,
    int8_tolerance=None,
    backend=None,
    sdk_root=None,
    sdk_venv=None,
    bias_bitwidth=None,
    per_channel=False,
    act_calibration=None,
    native_input_files=False,
    force=False,
    force_stage=None,
    verbose=False,
):
    """Run every stage that is not up to date: data to verified DLCs and a report."""
    _run(
        c,
        "build",
        verbose,
        force,
        tuple(force_stage or ()),
        data=data,
        out=out,
        seed=seed,
        grade_min=grade_min,
        grade_max=grade_max,
        grade_scale=grade_scale,
        column_student=column_student,
        column_semester=column_semester,
        column_course=column_course,
        column_grade=column_grade,
        model=model,
        runner=runner,
        base_image=base_image,
        epochs=epochs,
        dim=dim,
        optimizer=optimizer,
        l2=l2,
        cg_steps=cg_steps,
        patience=patience,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        export_batch=export_batch,
        calibration_samples=calibration_samples,
        activation_type=activation_type,
        weight_type=weight_type,
        int8_tolerance=int8_tolerance,
        backend=backend,
        sdk_root=sdk_root,
        sdk_venv=sdk_venv,
        bias_bitwidth=bias_bitwidth,
        per_channel=per_channel or None,
        act_calibration=act_calibration,
        native_input_files=native_input_files or None,
    )


@task(
    help={
        "sdk_root": "QAIRT SDK root (else QAIRT_SDK_ROOT, invoke.yaml, default places)",
        "venv": "where to make the venv (default <sdk>/bin/venv)",
        "python": "the Python to build it from (default: found automatically)",
        "verbose": "log DEBUG to the console",
    }
)
def setup_sdk_venv(c, sdk_root=None, venv=None, python=None, verbose=False):
    """Create the QAIRT SDK's Python venv and install its pinned requirements."""
    from coursedlc.sdk import find_sdk
    from coursedlc.sdk_venv import setup_sdk_venv as setup

    with _exit_on_error():
        settings = _settings(c, {"sdk_root": sdk_root, "sdk_venv": venv})
        logs.configure(settings.out, verbose)
        sdk = find_sdk(settings.sdk_root)
        if sdk is None:
            raise SdkError("no QAIRT SDK found: pass --sdk-root or set QAIRT_SDK_ROOT")
        setup(
            sdk,
            ROOT / "requirements" / "sdk-venv.txt",
            Layout(settings.out).logs / "setup-sdk-venv.log",
            venv=settings.sdk_venv,
            python=python,
            version=settings.sdk_python,
        )


@task(
    help={
        "student": "student id, as in the grade file (before the key's last '-')",
        "top": "how many courses (default 5)",
        "model": "float (CPU) or int8 (HTP emulator, as the NPU computes it)",
        "out": "build folder of a finished build, default build/",
        "verbose": "log DEBUG to the console",
    }
)
def recommend(c, student, top=5, model="float", out=None, verbose=False):
    """Recommend the courses a student has not taken, by predicted grade."""
    from coursedlc.ranking import recommend as rank

    with _exit_on_error():
        settings = _settings(c, {"out": out})
        logs.configure(None, verbose)
        found = rank(student, settings.out, int(top), model, settings.soc_model)
    if not found:
        print(f"{student} has taken every course in the model.")
        return
    width = max(len(r.course) for r in found)
    print(f"{'#':>2}  {'course':<{width}}  predicted grade  ({found[0].source})")
    for rank_, item in enumerate(found, 1):
        print(f"{rank_:>2}  {item.course:<{width}}  {item.predicted_grade:15.2f}")


@task(
    help={
        "out": "build folder (the image build's log goes to <out>/logs/image.log)",
        "base_image": "base image (default python:3.11-slim-bookworm)",
        "force": "rebuild even if an image with the same tag exists",
        "verbose": "log DEBUG to the console",
    }
)
def image(c, out=None, base_image=None, force=False, verbose=False):
    """Build the training image (tagged by its environment's hash)."""
    from coursedlc.container import build_image

    with _exit_on_error():
        settings = _settings(c, {"out": out, "base_image": base_image})
        logs.configure(settings.out, verbose)
        build_image(Layout(settings.out), settings.base_image, force=force)


@task(help={"out": "build folder to delete, default build/"})
def clean(c, out=None):
    """Delete the build folder (only if coursedlc made it)."""
    with _exit_on_error():
        layout = Layout(
            Settings.load(dict(c.config.get("coursedlc", {})), {"out": out}).out
        )
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
        "sizes": "enrollments per run, comma-separated (default 20000,200000,2000000)",
        "skip_baseline": "do not run the original training loop",
        "skip_peer": "do not run scikit-surprise's SVD",
    }
)
def bench(c, sizes="20000,200000,2000000", skip_baseline=False, skip_peer=False):
    """Benchmark the build at 20k/200k/2M enrollments; print and save a table."""
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "bench.py"),
        "--sizes",
        *sizes.split(","),
    ]
    argv += ["--skip-baseline"] * skip_baseline + ["--skip-peer"] * skip_peer
    code = subprocess.run(argv, cwd=ROOT, check=False).returncode  # noqa: S603
    if code:
        raise Exit(code=code)


@task(
    help={
        "k": "only tests matching this expression (pytest -k)",
        "fast": "skip tests marked slow",
    }
)
def test(c, k=None, fast=False):
    """Run ruff, mypy, bandit and the test suite."""
    steps = [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-c",
            "pyproject.toml",
            "-r",
            "src",
            "scripts",
            "tasks.py",
        ],
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
