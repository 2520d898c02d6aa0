"""The report: what was built, from what, and how well it predicts."""

from __future__ import annotations

import logging
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from coursedlc import __version__
from coursedlc.errors import StageInputError
from coursedlc.files import atomic_path, read_json, sha256, write_json
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

PACKAGES = ("torch", "numpy", "onnx", "onnxruntime", "onnxruntime-qnn")


def tool_versions() -> dict[str, str]:
    """Versions of Python and of the packages that shaped the artifacts."""
    found = {"python": platform.python_version(), "coursedlc": __version__}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def artifacts(layout: Layout) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every artifact a user ships or inspects."""
    files = [
        layout.weights,
        layout.vocab,
        layout.metrics,
        layout.loss_curve,
        layout.onnx,
        layout.qdq,
        layout.float_dlc,
        layout.int8_dlc,
    ]
    return {
        str(p.relative_to(layout.out).as_posix()): {
            "bytes": p.stat().st_size,
            "sha256": sha256(p),
        }
        for p in files
        if p.exists()
    }


def collect(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Gather every stage's record into one report dictionary.

    Each record holds the settings its stage ran with; ``settings`` (those of
    this call) describe none of the artifacts and are not reported.
    """
    needed = {
        layout.summary: "prepare",
        layout.metrics: "train",
        layout.export_check: "export",
        layout.float_dlc_info: "convert",
        layout.int8_dlc_info: "quantize",
        layout.verify: "verify",
    }
    for path, stage in needed.items():
        if not path.exists():
            raise StageInputError(f"no {path}: run `invoke {stage}` first")
    metrics = read_json(layout.metrics)
    metrics.pop("history")
    return {
        "data": read_json(layout.summary),
        "training": metrics,
        "export": read_json(layout.export_check),
        "calibration": read_json(layout.calibration),
        "dlc": {
            "float": read_json(layout.float_dlc_info),
            "int8": read_json(layout.int8_dlc_info),
        },
        "verify": read_json(layout.verify),
        "artifacts": artifacts(layout),
        "tools": tool_versions(),
    }


def render_markdown(report: dict[str, Any]) -> str:
    """A human-readable summary of :func:`collect`'s report."""
    data, train, ver = report["data"], report["training"], report["verify"]
    rmse, base = train["rmse"], train["baseline_global_mean_rmse"]
    lines = [
        "# coursedlc build report",
        "",
        "## Data",
        "",
        f"- source: `{data['source']}` (sha256 `{data['source_sha256'][:16]}...`)",
        f"- {data['enrollments']} enrollments, {data['students']} students, "
        f"{data['courses']} courses; scale {data['grade_scale']['min']:g}-"
        f"{data['grade_scale']['max']:g}, mean {data['grade_mean']:.2f}",
        f"- split train/validation/test: {data['split']['train']}/"
        f"{data['split']['validation']}/{data['split']['test']}; repeated "
        f"enrollments replaced: {data['duplicates_replaced']}",
        "",
        "## Accuracy (RMSE, grade points)",
        "",
        "| split | model | global-mean baseline |",
        "|---|---:|---:|",
    ]
    for split in ("train", "validation", "test"):
        lines.append(f"| {split} | {rmse[split]:.4f} | {base[split]:.4f} |")
    lines += [
        "",
        f"Model `{train['model']['kind']}`, dim {train['model']['dim']}, best epoch "
        f"{train['training']['best_epoch']} of {train['training']['epochs_run']}, "
        f"trained {train['training'].get('runner', 'local')}.",
        "",
    ]
    calib = report["calibration"]
    lines += [
        f"Quantization: activations {calib['activation_type']}, weights "
        f"{calib['weight_type']}, calibrated on {calib['pairs']} training pairs "
        f"({calib['distinct_students']} students, {calib['distinct_courses']} "
        "courses).",
        "",
    ]
    lines += _int8_lines(ver)
    lines += [
        "ONNX parity with PyTorch: max abs difference "
        f"{report['export']['max_abs_diff']:.2e} over "
        f"{report['export']['pairs']} pairs.",
        "",
        "## DLC files",
        "",
        "| file | bytes | ops | made by | converter |",
        "|---|---:|---|---|---|",
    ]
    for kind in ("float", "int8"):
        dlc = report["dlc"][kind]
        ops = ", ".join(f"{k} ({v})" for k, v in dlc["ops"].items())
        made = dlc.get("made_by", {})
        maker = made.get("toolchain", "?") + (
            f" {made['sdk_version']} ({dlc.get('tool')})"
            if "sdk_version" in made
            else ""
        )
        lines.append(
            f"| `{Path(dlc['path']).name}` | {dlc['bytes']} | {ops or '-'} | {maker} | "
            f"{dlc.get('converter_version') or '-'} |"
        )
    lines += ["", "## Artifacts", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for name, art in report["artifacts"].items():
        lines.append(f"| `{name}` | {art['bytes']} | `{art['sha256']}` |")
    lines += ["", "## Tools", ""]
    lines += [f"- {name}: {ver_}" for name, ver_ in report["tools"].items()]
    return "\n".join(lines) + "\n"


def _int8_lines(ver: dict[str, Any]) -> list[str]:
    if not ver.get("int8_executed"):
        return [f"int8 model: {ver.get('note', 'not executed')}.", ""]
    return [
        f"Quantized model on the test split, run by {ver['int8_runtime']}:",
        "",
        "| float RMSE | int8 RMSE | int8/float | max abs float-int8 |",
        "|---:|---:|---:|---:|",
        f"| {ver['float_rmse']:.4f} | {ver['int8_rmse']:.4f} | "
        f"{ver['int8_vs_float_ratio']:.4f} | {ver['max_abs_float_int8']:.4f} |",
        "",
    ]


def write_report(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Write ``report.json`` and ``report.md``."""
    report = collect(layout, settings)
    write_json(layout.report_json, report)
    with atomic_path(layout.report_md) as tmp:
        tmp.write_text(render_markdown(report), encoding="utf-8")
    log.info("report: %s", layout.report_md)
    return report
