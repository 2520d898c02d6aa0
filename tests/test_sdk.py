"""The QAIRT SDK backend, driven against a fake SDK that checks how it is called."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PureWindowsPath

import pytest

from coursedlc.errors import SdkError, ToolError
from coursedlc.sdk import Sdk, find_sdk, host_platform, load_sdk, venv_python
from coursedlc.settings import Settings, environment_layer
from coursedlc.tools import run_tool
from fake_sdk import LEGACY, MODERN, calls, make_fake_sdk, make_tool_venv

from conftest import PY, ROOT, invoke, sdk_build

# Finding the SDK -------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "machine", "folder"),
    [
        ("linux", "x86_64", "x86_64-linux-clang"),
        ("win32", "AMD64", "x86_64-windows-msvc"),
        ("win32", "ARM64", "aarch64-windows-msvc"),
    ],
)
def test_host_platform(system, machine, folder):
    assert host_platform(system, machine) == folder


def test_unsupported_host_is_named():
    with pytest.raises(SdkError, match="darwin/arm64"):
        host_platform("darwin", "arm64")


def test_explicit_root_and_its_version(tmp_path):
    root = make_fake_sdk(tmp_path / "qairt" / "2.36.0.250627")
    sdk = find_sdk(root)
    assert sdk == Sdk(root, "2.36.0.250627", "x86_64-linux-clang")
    assert sdk.require("qairt-converter", "snpe-onnx-to-dlc")[0] == "qairt-converter"


def test_newest_version_in_the_default_place(tmp_path):
    place = tmp_path / "qairt"
    for version in ("2.9.0.1", "2.36.0.250627", "2.25.0.240728"):
        make_fake_sdk(place / version, version=version)
    assert find_sdk(None, places=[place]).version == "2.36.0.250627"
    assert find_sdk(None, places=[tmp_path / "absent"]) is None


def test_missing_pieces_say_where_it_looked(tmp_path):
    with pytest.raises(SdkError, match=r"no sdk\.yaml"):
        load_sdk(tmp_path)
    root = make_fake_sdk(tmp_path / "sdk", platforms=("aarch64-oe-linux-gcc11.2",))
    with pytest.raises(SdkError, match="platform folders found: aarch64-oe-linux"):
        load_sdk(root, "linux", "x86_64")
    sdk = load_sdk(make_fake_sdk(tmp_path / "bare", tools=()))
    with pytest.raises(SdkError, match=r"none of qairt-converter, snpe-onnx-to-dlc"):
        sdk.require("qairt-converter", "snpe-onnx-to-dlc")


def test_windows_layout_and_environment(tmp_path):
    root = make_fake_sdk(tmp_path / "sdk", platforms=("x86_64-windows-msvc",))
    sdk = load_sdk(root, "win32", "AMD64")
    venv = tmp_path / "venv"
    env = sdk.environment({"PATH": r"C:\Windows"}, venv, system="win32")
    path = env["PATH"].split(";")
    assert path[:3] == [
        str(venv / "Scripts"),
        str(sdk.bin_dir),
        str(root / "lib" / "x86_64-windows-msvc"),
    ]
    assert path[-1] == r"C:\Windows"
    assert "LD_LIBRARY_PATH" not in env
    assert env["QNN_SDK_ROOT"] == env["QAIRT_SDK_ROOT"] == str(root)
    assert "SNPE_ROOT" not in env  # this SDK has include/QNN only
    assert venv_python(venv, "win32") == venv / "Scripts" / "python.exe"
    win = PureWindowsPath(r"C:\QualcommSNPE\qairt\2.36.0.250627")
    assert str(win / "bin" / "x86_64-windows-msvc") == (
        r"C:\QualcommSNPE\qairt\2.36.0.250627\bin\x86_64-windows-msvc"
    )


def test_linux_environment(tmp_path):
    sdk = load_sdk(make_fake_sdk(tmp_path / "sdk"))
    env = sdk.environment({"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x"}, None)
    assert env["PATH"] == f"{sdk.bin_dir}:/usr/bin"
    assert env["LD_LIBRARY_PATH"] == f"{sdk.lib_dir}:/x"
    assert env["PYTHONPATH"] == str(sdk.root / "lib" / "python")


def test_sdk_root_precedence():
    yaml_layer = {"sdk_root": "/from/yaml"}
    env = environment_layer({"QAIRT_SDK_ROOT": "/from/env"})
    assert Settings.load(yaml_layer, env).sdk_root == Path("/from/env")
    assert Settings.load(yaml_layer, env, {"sdk_root": "/cli"}).sdk_root == Path("/cli")
    assert Settings.load(yaml_layer, environment_layer({})).sdk_root == Path(
        "/from/yaml"
    )


# The fake is strict: a wrong call fails the way the real tool would ------------


def test_fake_rejects_the_legacy_input_dim_flag(tmp_path, built):
    _, layout = built
    sdk = load_sdk(make_fake_sdk(tmp_path / "sdk"))
    venv = make_tool_venv(tmp_path / "venv")
    argv = sdk.argv(
        sdk.tool("qairt-converter"),
        venv_python(venv),
        "--input_network",
        layout.onnx,
        "--output_path",
        tmp_path / "x.dlc",
        "--input_dim",
        "user_id",
        "1,1",
    )
    with pytest.raises(ToolError) as err:
        run_tool(argv, tmp_path / "t.log", env=sdk.environment(os.environ, venv))
    assert "unrecognized arguments: --input_dim" in str(err.value)
    assert "exit code 2" in str(err.value)


# End to end through Invoke ------------------------------------------------------


def test_build_with_the_sdk_backend_calls_each_tool_exactly(sdk_setup):
    root, _, data, config, out = sdk_setup
    result = sdk_build(config, root, data, out)
    assert result.returncode == 0, result.stderr[-3000:]

    onnx, dlc = out / "onnx" / "model.onnx", out / "dlc"
    recorded = calls(root)
    assert [c["tool"] for c in recorded] == [
        "qairt-converter",
        "qairt-dlc-info",
        "qairt-quantizer",
        "qairt-dlc-info",
    ]
    converter, info_float, quantizer, info_int8 = (c["argv"] for c in recorded)

    float_out = Path(converter[3])
    assert converter == [
        "--input_network",
        str(onnx),
        "--output_path",
        str(float_out),
        "--source_model_input_shape",
        "user_id",
        "1",
        "--source_model_input_shape",
        "course_id",
        "1",
    ]
    assert float_out.name == "model_float.dlc" and float_out.parent.parent == dlc
    assert info_float == ["-i", str(dlc / "model_float.dlc")]

    listing = Path(quantizer[3])
    assert quantizer == [
        "--input_dlc",
        str(dlc / "model_float.dlc"),
        "--input_list",
        str(listing),
        "--output_dlc",
        quantizer[5],
        "--act_bitwidth",
        "8",
        "--weights_bitwidth",
        "8",
        "--bias_bitwidth",
        "8",
        "--act_quantizer_calibration",
        "min-max",
    ]
    # The build folder has a space, so the raw files went to a temporary
    # folder without one, removed afterwards.
    assert " " not in str(listing) and not listing.exists()
    assert info_int8 == ["-i", str(dlc / "model_quantized.dlc")]

    report = json.loads((out / "report.json").read_text())
    assert report["dlc"]["float"]["made_by"]["sdk_version"] == "2.36.0.250627"
    assert report["dlc"]["int8"]["tool"] == "qairt-quantizer"
    assert report["verify"]["int8_executed"] is False
    assert "not executed" in (out / "report.md").read_text()
    assert (dlc / "model_float.dlc-info.txt").read_text().startswith("FAKE dlc-info")
    assert "backend: QAIRT SDK 2.36.0.250627" in result.stderr


def test_quantizer_options_and_native_inputs(sdk_setup):
    root, _, data, config, out = sdk_setup
    result = sdk_build(
        config,
        root,
        data,
        out,
        "--activation-type",
        "uint16",
        "--bias-bitwidth",
        "32",
        "--per-channel",
        "--native-input-files",
        "--act-calibration",
        "percentile",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    quantizer = next(c["argv"] for c in calls(root) if c["tool"] == "qairt-quantizer")
    assert quantizer[6:] == [
        "--act_bitwidth",
        "16",
        "--weights_bitwidth",
        "8",
        "--bias_bitwidth",
        "32",
        "--act_quantizer_calibration",
        "percentile",
        "--use_per_channel_quantization",
        "--use_native_input_files",
    ]


def test_legacy_sdk_uses_snpe_tools(tmp_path, sdk_setup):
    _, _, data, config, _ = sdk_setup
    root = make_fake_sdk(tmp_path / "legacy", tools=LEGACY, version="2.10.0.1")
    out = tmp_path / "out"
    result = sdk_build(config, root, data, out)
    assert result.returncode == 0, result.stderr[-3000:]
    converter, _, quant, _ = (c["argv"] for c in calls(root))
    assert converter[:2] == ["-i", str(out / "onnx" / "model.onnx")]
    assert converter[4:] == ["-d", "user_id", "1", "-d", "course_id", "1"]
    assert quant[0] == f"--input_dlc={out / 'dlc' / 'model_float.dlc'}"
    assert (
        quant[1]
        == f"--input_list={out.resolve() / 'sdk' / 'calibration' / 'input_list.txt'}"
    )
    assert quant[3:] == [
        "--act_bitwidth=8",
        "--weights_bitwidth=8",
        "--bias_bitwidth=8",
    ]


def test_failing_tool_surfaces_code_lines_and_log(sdk_setup):
    root, _, data, config, out = sdk_setup
    (root / "fail-qairt-converter").touch()
    result = sdk_build(config, root, data, out)
    assert result.returncode == 3  # the tool's own exit code
    assert "qairt-converter failed with exit code 3" in result.stderr
    assert "something went wrong inside the tool" in result.stderr
    assert f"Full log: {out / 'logs' / 'convert.log'}" in result.stderr
    assert not (out / "dlc" / "model_float.dlc").exists()
    assert not list((out / "dlc").glob(".tool-*"))


def test_net_run_outputs_are_read_and_judged(tmp_path, sdk_setup):
    _, _, data, config, out = sdk_setup
    root = make_fake_sdk(tmp_path / "with-net-run", tools=(*MODERN, "snpe-net-run"))
    result = sdk_build(config, root, data, out)
    # The fake runner outputs zeros, which verify must reject.
    assert result.returncode == 1
    assert "int8 RMSE" in result.stderr and "exceeds float RMSE" in result.stderr
    net_run = next(c["argv"] for c in calls(root) if c["tool"] == "snpe-net-run")
    assert net_run[:2] == ["--container", str(out / "dlc" / "model_quantized.dlc")]
    assert net_run[4:] == ["--output_dir", str(out / "sdk" / "net-run")]


def test_sdk_backend_without_sdk_or_venv(tmp_path, sdk_setup):
    root, _, data, _, out = sdk_setup
    result = invoke(
        "build",
        "--backend",
        "sdk",
        "--sdk-root",
        str(tmp_path / "nope"),
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
    )
    assert result.returncode == 1 and "does not exist" in result.stderr
    # Checked before any stage runs: no training time spent, nothing overwritten.
    assert not (out / "model" / "model.pt").exists()

    result = invoke(
        "build",
        "--sdk-root",
        str(root),
        "--data",
        str(data),
        "--out",
        str(out),
        "--sdk-venv",
        str(tmp_path / "no-venv"),
    )
    assert result.returncode == 1
    assert "run `invoke setup-sdk-venv`" in result.stderr
    assert not (out / "model" / "model.pt").exists()


def test_no_sdk_means_embedded_said_once(built, tmp_path):
    settings, _ = built
    out = tmp_path / "b"
    env = {k: v for k, v in os.environ.items() if k != "QAIRT_SDK_ROOT"}
    result = invoke(
        "build",
        "--data",
        str(settings.data),
        "--out",
        str(out),
        "--epochs",
        "2",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("backend: embedded") == 1


# The SDK venv ------------------------------------------------------------------


def test_wrong_python_is_refused(tmp_path):
    from coursedlc.sdk_venv import find_python, setup_sdk_venv

    sdk = load_sdk(make_fake_sdk(tmp_path / "sdk"))
    with pytest.raises(
        SdkError, match=r"is Python 3\.\d+; the SDK's tools need Python 2\.7"
    ):
        find_python("2.7", sys.executable, tmp_path / "l.log")
    venv = make_tool_venv(tmp_path / "venv")
    with pytest.raises(SdkError, match=rf"is a Python {PY} venv; .* need Python 3\.10"):
        setup_sdk_venv(
            sdk,
            ROOT / "requirements" / "sdk-venv.txt",
            tmp_path / "l.log",
            venv=venv,
            version="3.10",
        )


@pytest.mark.slow
def test_setup_sdk_venv_creates_a_real_310_venv_once(tmp_path):
    """Finds Python 3.10 (pyenv here), installs the real pins, runs the check."""
    root = make_fake_sdk(tmp_path / "sdk 2.36", python="3.10")
    venv = tmp_path / "sdk venv"
    config = tmp_path / "c.yaml"
    config.write_text(f'coursedlc:\n  out: "{tmp_path / "b"}"\n')
    first = invoke(
        "-f",
        str(config),
        "setup-sdk-venv",
        "--sdk-root",
        str(root),
        "--venv",
        str(venv),
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "check-python-dependency passed" in first.stderr
    version = subprocess.run(
        [
            venv_python(venv),
            "-c",
            "import numpy, onnx, sys; "
            "print(sys.version_info[:2], numpy.__version__, "
            "onnx.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == "(3, 10) 1.26.4 1.12.0"

    again = invoke(
        "-f",
        str(config),
        "setup-sdk-venv",
        "--sdk-root",
        str(root),
        "--venv",
        str(venv),
    )
    assert again.returncode == 0
    assert "is up to date" in again.stderr and "pip install" not in again.stderr

    # A package removed by hand is noticed and put back.
    subprocess.run(
        [venv_python(venv), "-m", "pip", "uninstall", "-y", "six"],
        check=True,
        capture_output=True,
    )
    third = invoke(
        "-f",
        str(config),
        "setup-sdk-venv",
        "--sdk-root",
        str(root),
        "--venv",
        str(venv),
    )
    assert third.returncode == 0
    assert "lacks six==1.16.0" in third.stderr
