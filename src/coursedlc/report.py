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
        layout.onnx_recommend,
        layout.qdq_recommend,
        layout.float_recommend_dlc,
        layout.int8_recommend_dlc,
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
        "stages": read_json(layout.last_build) if layout.last_build.exists() else [],
        "worst_courses": _worst_courses(layout),
    }


def _worst_courses(layout: Layout) -> list[dict[str, Any]]:
    from coursedlc.report_html import worst_courses

    keys = ("course", "test_pairs", "float_rmse", "int8_rmse")
    return [dict(zip(keys, row, strict=True)) for row in worst_courses(layout)]


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
    fitting = train["training"]
    how = fitting.get("optimizer", "adam")
    if "l2_search" in fitting:
        tried = ", ".join(f"{run['l2']:g}" for run in fitting["l2_search"])
        how += f", L2 {fitting['l2']:g} chosen from {tried}"
    lines += [
        "",
        f"Model `{train['model']['kind']}`, dim {train['model']['dim']}, trained "
        f"by {how}; best epoch {fitting['best_epoch']} of {fitting['epochs_run']}, "
        f"trained {fitting.get('runner', 'local')}.",
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
    lines += [
        "",
        "## Courses with the largest test error",
        "",
        "| course | test pairs | float RMSE | int8 RMSE |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {w['course']} | {w['test_pairs']} | {w['float_rmse']} | {w['int8_rmse']} |"
        for w in report["worst_courses"]
    ]
    lines += ["", "## Stages in the last build", ""]
    lines += [f"- {name}: {status}" for name, status in report["stages"]]
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
    from coursedlc.report_html import render

    with atomic_path(layout.report_html) as tmp:
        tmp.write_text(render(layout, report), encoding="utf-8")
    log.info("report: %s and %s", layout.report_md, layout.report_html)
    return report


METRICS = (
    ("enrollments", ("data", "enrollments")),
    ("train RMSE", ("training", "rmse", "train")),
    ("validation RMSE", ("training", "rmse", "validation")),
    ("test RMSE (float)", ("training", "rmse", "test")),
    ("test RMSE (global mean)", ("training", "baseline_global_mean_rmse", "test")),
    ("test RMSE (int8)", ("verify", "int8_rmse")),
    ("int8/float", ("verify", "int8_vs_float_ratio")),
    ("max |float - int8|", ("verify", "max_abs_float_int8")),
    ("epochs run", ("training", "training", "epochs_run")),
    ("float DLC bytes", ("dlc", "float", "bytes")),
    ("int8 DLC bytes", ("dlc", "int8", "bytes")),
)


def compare(ours: Path, theirs: Path) -> list[tuple[str, Any, Any, Any]]:
    """(metric, other build's value, this build's value, change) per metric.

    Raises:
        StageInputError: either build folder has no report.json.
    """
    reports = []
    for folder in (theirs, ours):
        path = Layout(folder).report_json
        if not path.is_file():
            raise StageInputError(f"no {path}: run `invoke build --out {folder}`")
        reports.append(read_json(path))
    rows = []
    for label, keys in METRICS:
        old, new = (_dig(r, keys) for r in reports)
        change = (
            new - old
            if isinstance(old, (int, float)) and isinstance(new, (int, float))
            else None
        )
        rows.append((label, old, new, change))
    return rows


def _dig(report: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = report
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def format_comparison(
    rows: list[tuple[str, Any, Any, Any]], ours: Path, theirs: Path
) -> str:
    """The comparison as an aligned text table."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    table = [("metric", str(theirs), str(ours), "change")]
    table += [
        (m, cell(o), cell(n), "-" if c is None else f"{c:+.4f}".rstrip("0").rstrip("."))
        for m, o, n, c in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    )
