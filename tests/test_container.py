"""The training container, run for real through the Docker SDK.

Needs a container engine at ``DOCKER_HOST``; CI starts Podman's
Docker-compatible service with ``scripts/podman_engine.py``. Without an engine
these tests are skipped. ``COURSEDLC_BASE_IMAGE`` names the base image to build
on when no registry is reachable.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from coursedlc import container, pipeline
from coursedlc.errors import ContainerError
from coursedlc.settings import Layout

from conftest import announce, settings_for, small_grades

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        not container.engine_answers(),
        reason=f"no container engine answers at "
        f"{os.environ.get('DOCKER_HOST', 'the default socket')}; start one (CI "
        "uses scripts/podman_engine.py) to run the container tests",
    ),
]

BASE = os.environ.get("COURSEDLC_BASE_IMAGE")
TIMING = {"seconds", "samples_per_second", "runner"}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return container.build_image(Layout(tmp_path_factory.mktemp("image")), BASE)


def prepared(root, write_grades):
    path = write_grades(small_grades())
    settings = settings_for(path, root, runner="docker", base_image=BASE)
    pipeline.run_stage("prepare", settings)
    return settings


def without_timing(metrics: dict) -> dict:
    metrics = json.loads(json.dumps(metrics))
    for key in TIMING:
        metrics["training"].pop(key)
    for entry in metrics["history"]:
        entry.pop("seconds")
        entry.pop("step_seconds")
    for run in metrics["training"].get("l2_search", []):
        run.pop("step_seconds")
    return metrics


def test_train_in_the_container_matches_a_local_run(
    image, tmp_path, write_grades, capsys
):
    settings = prepared(tmp_path / "docker", write_grades)
    local_root = tmp_path / "local"
    shutil.copytree(settings.out, local_root)

    where = os.environ.get("DOCKER_HOST", "the default socket")
    base = BASE or container.DEFAULT_BASE
    announce(capsys, f"\ncontainer: train stage in {image} (base {base}) at {where}")
    pipeline.run_stage("train", settings)
    pipeline.run_stage(
        "train", settings.model_copy(update={"out": local_root, "runner": "local"})
    )

    ours, theirs = Layout(settings.out), Layout(local_root)
    assert ours.weights.read_bytes() == theirs.weights.read_bytes()
    assert ours.loss_curve.read_bytes() == theirs.loss_curve.read_bytes()
    # Only wall-clock figures differ between the two runs.
    mine = json.loads(ours.metrics.read_text())
    assert without_timing(mine) == without_timing(
        json.loads(theirs.metrics.read_text())
    )

    stat = ours.weights.stat()
    assert (stat.st_uid, stat.st_gid) == (os.getuid(), os.getgid())
    assert "epoch" in (ours.logs / "train-container.log").read_text()
    announce(capsys, "container: model.pt and loss curve identical to a local run's")


def test_a_failing_container_reports_its_code_and_last_lines(image, tmp_path):
    empty = Layout(tmp_path / "empty")
    empty.out.mkdir()
    with pytest.raises(ContainerError) as err:
        container.run_train(empty, settings_for(tmp_path / "x.json", empty.out), image)
    assert err.value.exit_code == 1
    assert "exited with code 1" in str(err.value)
    assert "run `invoke prepare` first" in str(err.value)


def test_an_unchanged_environment_is_not_rebuilt(image, tmp_path, caplog):
    with caplog.at_level("INFO", logger="coursedlc"):
        assert container.build_image(Layout(tmp_path), BASE) == image
    assert "is up to date, not rebuilt" in caplog.text
