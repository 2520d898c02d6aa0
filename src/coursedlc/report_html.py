"""``report.html``: the build report as one self-contained page.

Plots are drawn with matplotlib and embedded as base64 PNGs, so the file can be
mailed or attached to a CI job and opened anywhere without its build folder.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from coursedlc.dataset import Dataset
from coursedlc.files import read_json
from coursedlc.settings import Layout

WORST_COURSES = 10
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
td.text { text-align: left; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; } figcaption { font-size: .9em; color: #555; }
code { font-size: .9em; }
"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _figure(img: str, caption: str) -> str:
    return f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def plots(layout: Layout, report: dict[str, Any]) -> list[str]:
    """The report's figures as embedded images with captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = Dataset.load(layout)
    history = read_json(layout.metrics)["history"]
    pred = np.load(layout.predictions, allow_pickle=False)
    grades = data.part("test")[2]
    figures = []

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.hist(data.grade, bins=40, color="#4a7ab5")
    ax.set_xlabel("grade")
    ax.set_ylabel("enrollments")
    figures.append(_figure(_png(fig), "Grades in the data"))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_rmse"] for h in history], label="train")
    ax.plot(epochs, [h["validation_rmse"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE")
    ax.legend()
    figures.append(_figure(_png(fig), "Training curves"))

    if not np.isnan(pred[:, 1]).all():
        fig, ax = plt.subplots(figsize=(5, 3.4))
        ax.scatter(pred[:, 0], pred[:, 1], s=4, alpha=0.4)
        low, high = float(pred.min()), float(pred.max())
        ax.plot([low, high], [low, high], color="#c33", linewidth=1)
        ax.set_xlabel("float prediction")
        ax.set_ylabel("int8 prediction")
        figures.append(_figure(_png(fig), "Float vs int8 on the test split"))

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.hist(pred[:, 0] - grades, bins=40, alpha=0.6, label="float")
    if not np.isnan(pred[:, 1]).all():
        ax.hist(pred[:, 1] - grades, bins=40, alpha=0.6, label="int8")
    ax.set_xlabel("prediction - grade")
    ax.set_ylabel("test pairs")
    ax.legend()
    figures.append(_figure(_png(fig), "Errors on the test split"))
    return figures


def worst_courses(layout: Layout) -> list[list[Any]]:
    """Per-course test RMSE (float, int8) of the worst courses, worst first."""
    data = Dataset.load(layout)
    _, courses, grades = data.part("test")
    pred = np.load(layout.predictions, allow_pickle=False)
    rows = []
    for index in np.unique(courses):
        mask = courses == index
        errors = pred[mask] - grades[mask, None]
        rmse = np.sqrt(np.mean(errors**2, axis=0))
        rows.append([data.courses[index], int(mask.sum()), *rmse.tolist()])
    rows.sort(key=lambda r: -r[2])
    return [
        [c, n, f"{f:.3f}", "-" if np.isnan(i) else f"{i:.3f}"]
        for c, n, f, i in rows[:WORST_COURSES]
    ]


def render(layout: Layout, report: dict[str, Any]) -> str:
    """The whole page."""
    data, training, ver = report["data"], report["training"], report["verify"]
    rmse, base = training["rmse"], training["baseline_global_mean_rmse"]
    int8 = ver.get("int8_rmse")
    sections = [
        "<h1>coursedlc build report</h1>",
        "<h2>Data</h2>",
        _table(
            ["", "value"],
            [
                ["source", data["source"]],
                ["students", data["students"]],
                ["courses", data["courses"]],
                ["enrollments", data["enrollments"]],
                [
                    "grade scale",
                    f"{data['grade_scale']['min']:g} - {data['grade_scale']['max']:g}",
                ],
                ["repeated enrollments replaced", data["duplicates_replaced"]],
            ],
        ),
        "<h2>Accuracy on the test split (RMSE, grade points)</h2>",
        _table(
            ["model", "test RMSE"],
            [
                ["global-mean baseline", f"{base['test']:.4f}"],
                [f"float ({training['model']['kind']})", f"{rmse['test']:.4f}"],
                [
                    "int8 (" + ver.get("int8_runtime", "?") + ")",
                    "not executed" if int8 is None else f"{int8:.4f}",
                ],
            ],
        ),
        '<div class="plots">' + "".join(plots(layout, report)) + "</div>",
        "<h2>Courses with the largest test error</h2>",
        _table(
            ["course", "test pairs", "float RMSE", "int8 RMSE"], worst_courses(layout)
        ),
        "<h2>DLC files</h2>",
        _table(
            ["file", "bytes", "ops", "made by", "converter"],
            [
                [
                    Path(d["path"]).name,
                    d["bytes"],
                    ", ".join(f"{k} ({v})" for k, v in d["ops"].items()) or "-",
                    d.get("made_by", {}).get("toolchain", "?")
                    + (
                        f" {d['made_by']['sdk_version']}"
                        if "sdk_version" in d.get("made_by", {})
                        else ""
                    ),
                    d.get("converter_version") or "-",
                ]
                for d in report["dlc"].values()
            ],
        ),
        "<h2>Artifacts</h2>",
        _table(
            ["file", "bytes", "sha256"],
            [[n, a["bytes"], a["sha256"]] for n, a in report["artifacts"].items()],
        ),
        "<h2>Stages in the last build</h2>",
        _table(["stage", "status"], report["stages"]),
        "<h2>Tools</h2>",
        _table(["tool", "version"], [[n, v] for n, v in report["tools"].items()]),
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>coursedlc report</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
