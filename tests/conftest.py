"""Shared fixtures: small grade files and one small real build per session."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coursedlc import pipeline, synthetic
from coursedlc.settings import Layout, Settings
from fake_sdk import make_fake_sdk, make_tool_venv

ROOT = Path(__file__).resolve().parents[1]
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
OULAD = ROOT / "data" / "oulad-grades.json"

# Child Pythons the tests start import this checkout's code too, whichever
# checkout pip's editable install names.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p
)


def announce(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Print past pytest's capture, so CI's log shows what a test ran."""
    with capsys.disabled():
        print(text, flush=True)


def invoke(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in the repository as a user would; capture output."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env=env,
    )


@pytest.fixture(autouse=True)
def _plain_logging():
    """Undo what a command run in-process did to logging (pytest's capture needs
    coursedlc's records to reach the root logger)."""
    yield
    ours = logging.getLogger("coursedlc")
    for handler in list(ours.handlers):
        ours.removeHandler(handler)
        handler.close()
    ours.propagate = True


@pytest.fixture
def write_grades(tmp_path: Path) -> Callable[[Any], Path]:
    """Write a grade file (an object as JSON, or raw text/bytes) and return it."""

    def write(content: Any, name: str = "grades.json") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content), encoding="utf-8")
        return path

    return write


def small_grades(students: int = 120, courses: int = 12, per_student: int = 8) -> dict:
    """A small synthetic grade set that trains in about a second."""
    return synthetic.generate(
        students=students, courses=courses, per_student=per_student, seed=3
    )


def settings_for(data: Path, out: Path, **overrides: Any) -> Settings:
    """Settings for a test build: few epochs unless a test asks for more."""
    return Settings.load({"data": data, "out": out, "epochs": 30}, overrides)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Layout]:
    """A complete build (every stage, real DLCs) on small synthetic data."""
    root = tmp_path_factory.mktemp("built")
    data = root / "grades.json"
    data.write_text(json.dumps(small_grades()), encoding="utf-8")
    settings = settings_for(data, root / "build")
    logging.getLogger("coursedlc").setLevel(logging.INFO)
    pipeline.build(settings)
    return settings, Layout(settings.out)


def sdk_build(config, root, data, out, *extra: str):
    """``invoke build`` with the SDK backend, the fake SDK and its venv."""
    return invoke(
        "-f",
        str(config),
        "build",
        "--backend",
        "sdk",
        "--sdk-root",
        str(root),
        "--data",
        str(data),
        "--out",
        str(out),
        *extra,
    )


@pytest.fixture
def sdk_setup(tmp_path):
    """A fake SDK, a venv for it, grades, and an Invoke config naming them."""
    base = tmp_path / "it's a folder"  # a space and a quote in every path
    root = make_fake_sdk(base / "qairt 2.36")
    venv = make_tool_venv(base / "sdk venv")
    data = base / "grades.json"
    data.write_text(json.dumps(small_grades()))
    config = tmp_path / "sdk.yaml"
    config.write_text(
        f"coursedlc:\n  sdk_python: '{PY}'\n  sdk_venv: \"{venv}\"\n  epochs: 5\n"
    )
    return root, venv, data, config, base / "my build"
