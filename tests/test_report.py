"""The report: self-contained HTML, rendered for real, and build comparison."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from coursedlc.report import compare, format_comparison
from coursedlc.settings import Layout

from conftest import invoke

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_report_is_self_contained(built):
    _, layout = built
    page = layout.report_html.read_text()
    # Every image is embedded; nothing is fetched from anywhere.
    assert len(re.findall(r'<img alt="" src="data:image/png;base64,', page)) == 4
    assert not re.search(r'(src|href)="(?!data:)', page)
    for heading in (
        "Data",
        "Accuracy on the test split",
        "Courses with the largest test error",
        "DLC files",
        "Artifacts",
        "Stages in the last build",
        "Tools",
    ):
        assert f"<h2>{heading}" in page
    report = json.loads(layout.report_json.read_text())
    assert f"{report['training']['rmse']['test']:.4f}" in page
    assert [name for name, _ in report["stages"]] == [
        "prepare",
        "train",
        "export",
        "convert",
        "quantize",
        "verify",
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (Debian package chromium)")
def test_html_report_renders_in_headless_chromium(built, tmp_path):
    _, layout = built
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'p'}",
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            layout.report_html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2400, 1200)
    # Not a blank page: text, tables and plots put many non-white pixels on it.
    assert (pixels[..., :3] < 0.5).mean() > 0.01


def test_compare_two_builds(built, tmp_path):
    _, layout = built
    other = tmp_path / "other"
    shutil.copytree(layout.out, other)
    report = json.loads(Layout(other).report_json.read_text())
    report["training"]["rmse"]["test"] += 1.5
    Layout(other).report_json.write_text(json.dumps(report))

    rows = {m: (o, n, c) for m, o, n, c in compare(layout.out, other)}
    old, new, change = rows["test RMSE (float)"]
    assert change == pytest.approx(-1.5) and new < old
    assert rows["enrollments"][2] == 0
    text = format_comparison(list(compare(layout.out, other)), layout.out, other)
    assert text.splitlines()[0].split()[0] == "metric"

    result = invoke("report", "--out", str(layout.out), "--compare", str(other))
    assert result.returncode == 0, result.stderr
    assert "-1.5" in next(x for x in result.stdout.splitlines() if "(float)" in x)
    assert invoke("report", "--compare", str(tmp_path / "none")).returncode == 1


def test_saved_predictions_match_the_verify_record(built):
    _, layout = built
    pred = np.load(layout.predictions, allow_pickle=False)
    record = json.loads(layout.verify.read_text())
    assert pred.shape == (record["pairs"], 2)
    assert np.abs(pred[:, 0] - pred[:, 1]).max() == pytest.approx(
        record["max_abs_float_int8"]
    )
