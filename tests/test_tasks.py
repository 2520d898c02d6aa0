"""The Invoke tasks and the command line, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coursedlc.__main__ import main
from coursedlc.dlc import read_entry

from conftest import OULAD, ROOT, invoke

STAGES = [
    "prepare",
    "train",
    "export",
    "convert",
    "quantize",
    "verify",
    "build",
    "clean",
    "test",
]


def test_list_shows_every_stage_with_a_summary():
    listing = invoke("--list")
    assert listing.returncode == 0, listing.stderr
    summaries = {
        words[0]: words[1:]
        for words in (x.split() for x in listing.stdout.splitlines()[1:])
        if words
    }
    for name in STAGES:
        assert summaries.get(name), f"{name} is not listed with a summary"
    helped = invoke("--help", "build")
    for option in ("--data", "--out", "--epochs", "--seed", "--grade-min"):
        assert option in helped.stdout


@pytest.fixture(scope="module")
def oulad_slice(tmp_path_factory) -> Path:
    """The first 3,000 keys of the shipped OULAD grades."""
    grades = json.loads(OULAD.read_text(encoding="utf-8"))
    keys = list(grades)[:3000]
    path = tmp_path_factory.mktemp("oulad") / "slice.json"
    path.write_text(json.dumps({k: grades[k] for k in keys}), encoding="utf-8")
    return path


@pytest.mark.slow
def test_invoke_build_on_real_data(oulad_slice, tmp_path):
    out = tmp_path / "build"
    result = invoke("build", "--data", str(oulad_slice), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]

    for name in (
        "model/model.pt",
        "model/vocab.json",
        "model/metrics.json",
        "onnx/model.onnx",
        "onnx/model_qdq.onnx",
        "report.md",
        "report.json",
    ):
        assert (out / name).is_file(), name
    for name in ("model_float.dlc", "model_quantized.dlc"):
        path = out / "dlc" / name
        assert zipfile.is_zipfile(path)
        graph = read_entry(path, "model")
        assert b"Gather" in graph and b"Eltwise_Binary" in graph

    report = json.loads((out / "report.json").read_text())
    rmse = report["training"]["rmse"]["test"]
    assert rmse < report["training"]["baseline_global_mean_rmse"]["test"]
    assert report["verify"]["int8_rmse"] <= report["verify"]["float_rmse"] * 1.02
    assert set(report["artifacts"]) >= {
        "dlc/model_float.dlc",
        "dlc/model_quantized.dlc",
    }
    assert report["tools"]["onnxruntime-qnn"] == "2.7.0"
    markdown = (out / "report.md").read_text()
    assert "| test |" in markdown and "model_quantized.dlc" in markdown
    # The native libraries' chatter is in the logs, not on the console.
    assert "HTP power config" not in result.stdout + result.stderr
    assert (out / "logs" / "convert.log").stat().st_size > 0

    cleaned = invoke("clean", "--out", str(out))
    assert cleaned.returncode == 0 and not out.exists()


def test_bad_data_exits_non_zero_with_the_location(write_grades, tmp_path):
    path = write_grades({"ann-2023": [{"course_id": "X", "course_grade": False}]})
    result = invoke("prepare", "--data", str(path), "--out", str(tmp_path / "b"))
    assert result.returncode == 1
    assert "'ann-2023', index 0: course_grade is false (bool)" in result.stderr


def test_stage_without_its_input_names_the_stage_to_run(tmp_path):
    result = invoke("train", "--out", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert "run `invoke prepare` first" in result.stderr


def test_bad_setting_is_a_clear_error(tmp_path):
    result = invoke("train", "--out", str(tmp_path), "--model", "mlp")
    assert result.returncode == 1
    assert "model='mlp'" in result.stderr and "invoke.yaml" in result.stderr


def test_clean_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = invoke("clean", "--out", str(tmp_path))
    assert result.returncode == 1
    assert (tmp_path / "precious.txt").exists()


def test_module_command_line(write_grades, tmp_path, capsys):
    path = write_grades({"ann-2023": [{"course_id": 7, "course_grade": 50}]})
    code = main(["prepare", "--data", str(path), "--out", str(tmp_path / "b")])
    assert code == 1
    assert "course_id is 7 (int)" in capsys.readouterr().err


def test_invoke_yaml_settings_apply_and_options_win(write_grades, tmp_path):
    grades = {
        f"s{i}-2023": [
            {"course_id": f"C{c}", "course_grade": 1 + (i + c) % 5} for c in range(4)
        ]
        for i in range(6)
    }
    path = write_grades(grades)
    config = tmp_path / "five.yaml"
    config.write_text(f"coursedlc:\n  grade_min: 1\n  grade_max: 5\n  data: {path}\n")
    out = tmp_path / "b"

    result = invoke("-f", str(config), "prepare", "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "data" / "summary.json").read_text())
    assert summary["grade_scale"] == {"min": 1, "max": 5}

    result = invoke("-f", str(config), "prepare", "--out", str(out), "--grade-max", "4")
    assert result.returncode == 1
    assert "outside the declared scale [1, 4]" in result.stderr


def test_generator_script_writes_a_valid_grade_file(tmp_path):
    out = tmp_path / "synthetic.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "generate_grades.py"),
            "--students",
            "30",
            "--courses",
            "8",
            "--per-student",
            "5",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code = main(["prepare", "--data", str(out), "--out", str(tmp_path / "b")])
    assert code == 0
    summary = json.loads((tmp_path / "b" / "data" / "summary.json").read_text())
    assert summary["enrollments"] == 150 and summary["students"] == 30
