"""Incremental builds: the manifest, skipping, forcing, locking, reproducibility."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys

import pytest
from filelock import FileLock

from coursedlc import manifest, pipeline
from coursedlc.dlc import flatbuffer_strings, read_entry
from coursedlc.errors import StageInputError
from coursedlc.settings import Layout

from conftest import ROOT

ALL = list(pipeline.NAMES)


@pytest.fixture
def copy(built, tmp_path):
    """A copy of the session's complete build, and settings pointing at it."""
    settings, _ = built
    out = tmp_path / "build"
    shutil.copytree(settings.out, out)
    return settings.model_copy(update={"out": out}), Layout(out)


def test_an_unchanged_build_skips_every_stage(copy, caplog):
    settings, _ = copy
    with caplog.at_level(logging.INFO, logger="coursedlc"):
        assert pipeline.build(settings) == []
    for name in ALL:
        assert f"{name}: up to date, skipping" in caplog.text


def test_deciding_imports_neither_torch_nor_onnxruntime(copy):
    settings, _ = copy
    code = (
        "import sys, json; from coursedlc import pipeline; "
        "from coursedlc.settings import Settings; "
        f"ran = pipeline.build(Settings(**json.loads({settings.model_dump_json()!r})));"
        "print(ran, [m for m in ('torch', 'onnxruntime') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert out.strip() == "[] []"


def test_a_quantization_setting_reruns_only_what_follows(copy, caplog):
    settings, _layout = copy
    with caplog.at_level(logging.DEBUG, logger="coursedlc"):
        ran = pipeline.build(settings.model_copy(update={"activation_type": "uint16"}))
    assert ran == ["quantize", "verify", "report"]
    assert 'settings changed (activation_type: "uint8" -> "uint16")' in caplog.text


def test_an_edited_grade_reruns_everything(copy, tmp_path):
    settings, _ = copy
    grades = json.loads(settings.data.read_text())
    key = next(iter(grades))
    grades[key][0]["course_grade"] = 42.0
    data = tmp_path / "edited.json"
    data.write_text(json.dumps(grades))
    # Same file name as before, new content: the hash, not the name, decides.
    shutil.copy(data, settings.out / "grades.json")
    edited = settings.model_copy(update={"data": settings.out / "grades.json"})
    assert pipeline.build(edited) == ALL


def test_a_deleted_output_is_made_again(copy):
    settings, layout = copy
    layout.float_dlc.unlink()
    ran = pipeline.build(settings)
    assert ran[0] == "convert" and "prepare" not in ran and "quantize" not in ran
    assert layout.float_dlc.is_file()


def test_an_interrupted_stage_is_not_recorded_as_done(copy, monkeypatch):
    settings, layout = copy

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("coursedlc.quantize.make_qdq", broken)
    with pytest.raises(KeyboardInterrupt):
        pipeline.build(settings, force_stages=["quantize"])
    assert "quantize" not in manifest.load(layout)

    monkeypatch.undo()
    assert pipeline.build(settings) == ["quantize", "verify", "report"]


def test_force_and_unknown_stages(copy):
    settings, _ = copy
    # verify writes the same bytes again, so the report stays up to date.
    assert pipeline.build(settings, force_stages=["verify"]) == ["verify"]
    assert pipeline.build(settings, force=True) == ALL
    with pytest.raises(StageInputError, match="no such stage; the stages are prepare"):
        pipeline.build(settings, force_stages=["deploy"])


def test_a_second_run_on_the_same_folder_fails_clearly(copy):
    settings, layout = copy
    with FileLock(layout.out / ".coursedlc.lock"):
        script = (
            "import json, sys; from coursedlc import pipeline; "
            "from coursedlc.settings import Settings; "
            f"pipeline.build(Settings(**json.loads({settings.model_dump_json()!r})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
    assert done.returncode != 0
    assert "another coursedlc run is using" in done.stderr


def test_a_single_stage_refuses_files_out_of_date(copy):
    settings, _layout = copy
    pipeline.run_stage("train", settings.model_copy(update={"seed": 7}))
    with pytest.raises(StageInputError) as err:
        pipeline.run_stage("quantize", settings)
    assert "export is out of date" in str(err.value)
    assert "run `invoke export`" in str(err.value)


def test_same_inputs_give_the_same_bytes(built, tmp_path):
    settings, first = built
    again = settings.model_copy(update={"out": tmp_path / "again"})
    pipeline.build(again)
    second = Layout(again.out)

    for name in (
        "model/model.pt",
        "onnx/model.onnx",
        "onnx/model_qdq.onnx",
        "model/vocab.json",
        "data/split.npy",
        "model/loss_curve.png",
    ):
        assert (first.out / name).read_bytes() == (second.out / name).read_bytes()
    ours, theirs = manifest.load(first), manifest.load(second)
    for stage in ("prepare", "export"):
        assert ours[stage]["outputs"] == theirs[stage]["outputs"]
    assert (
        ours["train"]["outputs"]["model/model.pt"]
        == (theirs["train"]["outputs"]["model/model.pt"])
    )

    # DLCs: the weights are the same bytes; the graph differs only in its name,
    # a number onnxruntime makes up per session; the metadata has a timestamp.
    for dlc in ("dlc/model_float.dlc", "dlc/model_quantized.dlc"):
        a, b = first.out / dlc, second.out / dlc
        assert read_entry(a, "model.params.bin") == read_entry(b, "model.params.bin")
        assert graph_strings(a) == graph_strings(b)


def graph_strings(dlc):
    return [
        GRAPH_NAME.sub("GRAPH", s) for s in flatbuffer_strings(read_entry(dlc, "model"))
    ]


GRAPH_NAME = re.compile(r"^QNNExecutionProvider_QNNExecutionProvider_\d+_\d+_\d+$")
