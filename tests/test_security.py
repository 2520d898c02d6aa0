"""Security properties checked on the source and on a real build."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from coursedlc import pipeline
from coursedlc.container import redact

from conftest import ROOT

SOURCES = [
    *sorted((ROOT / "src").rglob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
    ROOT / "tasks.py",
]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"\bimport pickle\b|\bpickle\.", "pickle runs code on load"),
        (r"shell\s*=\s*True", "a shell string breaks on quotes and spaces"),
        (r"weights_only\s*=\s*False", "a full torch pickle runs code on load"),
        (r"\.extractall\(|\.extract\(", "entry names could write outside a folder"),
        (r"allow_pickle\s*=\s*True", "object arrays are pickles"),
        (r"(?<![.\w])(eval|exec)\(", "code from data"),
    ],
)
def test_forbidden_constructs(pattern, why):
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not found, f"{why}: {found}"


def test_the_image_runs_as_a_non_root_user():
    dockerfile = (ROOT / "docker" / "train.Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_credentials_in_urls_are_redacted():
    assert redact("https://bob:s3cret@pypi.example/simple") == (
        "https://bob:***@pypi.example/simple"
    )
    assert redact("https://pypi.example/simple") == "https://pypi.example/simple"


def test_secrets_in_the_environment_stay_out_of_logs_and_reports(built, tmp_path):
    settings, layout = built
    secret = "glpat-THIS-MUST-NOT-LEAK-0123"  # noqa: S105 - a fake, to look for
    out = tmp_path / "copy"
    shutil.copytree(layout.out, out)
    os.environ["CI_JOB_TOKEN"] = secret
    os.environ["PIP_INDEX_URL"] = f"https://ci:{secret}@mirror.example/simple"
    try:
        pipeline.build(settings.model_copy(update={"out": out}), force=True)
    finally:
        del os.environ["CI_JOB_TOKEN"], os.environ["PIP_INDEX_URL"]
    leaks = [
        p for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert not leaks
