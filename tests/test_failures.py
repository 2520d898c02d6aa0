"""Failing tools and a failing disk: a clear error, nothing good lost, nothing
half-built looking finished, and the next run redoes the failed stage."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid

import pytest

from coursedlc import manifest, pipeline
from coursedlc.errors import WriteError
from coursedlc.settings import Layout

from conftest import invoke, sdk_build


@pytest.mark.parametrize(
    ("tool", "switch", "fragment"),
    [
        ("qairt-converter", "fail", "qairt-converter failed with exit code 3"),
        ("qairt-converter", "hang", "did not finish within 3s and was stopped"),
        ("qairt-converter", "silent", "wrote no model_float.dlc"),
        ("qairt-converter", "truncate", "not a readable DLC archive"),
        ("qairt-quantizer", "fail", "qairt-quantizer failed with exit code 3"),
        ("qairt-quantizer", "truncate", "not a readable DLC archive"),
    ],
)
def test_a_broken_tool_keeps_the_good_dlc(sdk_setup, tool, switch, fragment):
    root, _, data, config, out = sdk_setup
    stage, dlc = {
        "qairt-converter": ("convert", out / "dlc" / "model_float.dlc"),
        "qairt-quantizer": ("quantize", out / "dlc" / "model_quantized.dlc"),
    }[tool]
    config.write_text(config.read_text() + "  tool_timeout: 3\n")
    assert sdk_build(config, root, data, out).returncode == 0
    good = dlc.read_bytes()

    (root / f"{switch}-{tool}").touch()
    broken = invoke(
        "-f",
        str(config),
        stage,
        "--backend",
        "sdk",
        "--sdk-root",
        str(root),
        "--out",
        str(out),
    )
    assert broken.returncode != 0
    assert fragment in broken.stderr
    assert dlc.read_bytes() == good
    assert stage not in manifest.load(Layout(out))
    assert not list((out / "dlc").glob(".tool-*"))

    (root / f"{switch}-{tool}").unlink()
    again = sdk_build(config, root, data, out, "--verbose")
    assert again.returncode == 0
    assert f"{stage}: running because no finished run is recorded" in again.stderr


@contextlib.contextmanager
def small_disk(path, size="16m"):
    """A real tmpfs mounted at ``path``: writes to it can really fail."""
    path.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_disk_leaves_the_previous_artifacts(built, tmp_path):
    settings, _ = built
    with small_disk(tmp_path / "disk") as disk:
        ours = settings.model_copy(update={"out": disk / "build"})
        pipeline.build(ours)
        layout = Layout(ours.out)
        good = layout.int8_dlc.read_bytes()

        # Fill the disk, then ask for a new int8 model.
        with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * (1 << 16))
                filler.flush()
        with pytest.raises(WriteError, match="No space left on device") as err:
            pipeline.build(ours.model_copy(update={"activation_type": "uint16"}))
        assert "finished artifacts were left as they were" in str(err.value)
        assert layout.int8_dlc.read_bytes() == good
        # Nothing could be written, not even the manifest: its quantize record
        # still describes the uint8 model, which is what is on disk.
        record = manifest.load(layout).get("quantize")
        if record is not None:
            assert record["params"]["activation_type"] == "uint8"
            assert manifest.why_stale(record, None, layout) is None

        (disk / "filler").unlink()
        ran = pipeline.build(ours.model_copy(update={"activation_type": "uint16"}))
        assert ran[0] == "quantize"


def test_a_read_only_build_folder_is_refused_clearly(built, tmp_path):
    settings, _ = built
    with small_disk(tmp_path / "disk") as disk:
        ours = settings.model_copy(update={"out": disk / "build"})
        pipeline.build(ours)
        before = {p: p.read_bytes() for p in (disk / "build").rglob("*") if p.is_file()}
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        try:
            with pytest.raises(WriteError, match="Read-only file system"):
                pipeline.build(ours, force_stages=["verify"])
            result = invoke(
                "build",
                "--out",
                str(ours.out),
                "--data",
                str(ours.data),
                "--epochs",
                "30",
                "--force-stage",
                "verify",
            )
            assert result.returncode == 1
            assert "Read-only file system" in result.stderr
            assert "Traceback" not in result.stderr
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        after = {p: p.read_bytes() for p in (disk / "build").rglob("*") if p.is_file()}
        assert after == before


def test_no_half_written_files_after_a_failure(built, tmp_path, monkeypatch):
    settings, _ = built
    out = tmp_path / str(uuid.uuid4())
    shutil.copytree(settings.out, out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("coursedlc.qnn.inspect_dlc", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.build(
            settings.model_copy(update={"out": out}), force_stages=["convert"]
        )
    leftovers = [
        p for p in out.rglob("*") if ".partial" in p.name or ".dump-" in p.name
    ]
    assert not leftovers
