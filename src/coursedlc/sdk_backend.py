"""The SDK backend: the QAIRT SDK's own converter, quantizer and runners.

``qairt-converter`` (or the older ``snpe-onnx-to-dlc``) makes the float DLC,
``qairt-quantizer`` (or ``snpe-dlc-quant``) the int8 DLC from a calibration input
list, and ``snpe-net-run``, where the SDK has it for this host, runs the int8
DLC over the test split.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from coursedlc.backend import Backend
from coursedlc.dlc import inspect_dlc
from coursedlc.errors import ConversionError, SdkError
from coursedlc.export import INPUTS, OUTPUT
from coursedlc.settings import Layout, Settings
from coursedlc.tools import run_tool

log = logging.getLogger(__name__)

BITS = {"uint8": "8", "uint16": "16"}


def input_shapes(model: Path) -> dict[str, list[int]]:
    """Static shapes of a model's inputs, in graph order.

    Raises:
        ConversionError: an input has a dynamic dimension.
    """
    shapes = {}
    for value in onnx.load(str(model), load_external_data=False).graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if not all(dims):
            raise ConversionError(
                f"{model}: input {value.name!r} has a dynamic dimension; re-export"
            )
        shapes[value.name] = dims
    return shapes


@contextlib.contextmanager
def tool_output(final: Path) -> Iterator[Path]:
    """A fresh path for a tool to write; checked, then moved onto ``final``."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tool-", dir=final.parent) as tmp:
        out = Path(tmp) / final.name
        yield out
        if not out.is_file() or out.stat().st_size == 0:
            raise ConversionError(
                f"the tool reported success but wrote no {final.name}; see the log"
            )
        inspect_dlc(out, require_ops=False)
        os.replace(out, final)


def _run(
    backend: Backend, tool: Path, args: list[Any], settings: Settings, log_path: Path
) -> str:
    assert backend.sdk is not None
    return run_tool(
        backend.sdk.argv(tool, backend.python, *args),
        log_path,
        env=backend.sdk.environment(os.environ, backend.venv),
        timeout=settings.tool_timeout,
    )[1]


def convert(layout: Layout, settings: Settings, backend: Backend) -> dict[str, Any]:
    """Float DLC with the SDK's converter, every input's shape given."""
    assert backend.sdk is not None
    name, tool = backend.sdk.require("qairt-converter", "snpe-onnx-to-dlc")
    shapes = input_shapes(layout.onnx)
    log_path = layout.logs / "convert.log"
    with tool_output(layout.float_dlc) as out:
        if name == "qairt-converter":
            args: list[Any] = ["--input_network", layout.onnx, "--output_path", out]
            for input_name, dims in shapes.items():
                args += [
                    "--source_model_input_shape",
                    input_name,
                    ",".join(map(str, dims)),
                ]
        else:
            args = ["-i", layout.onnx, "-o", out]
            for input_name, dims in shapes.items():
                args += ["-d", input_name, ",".join(map(str, dims))]
        _run(backend, tool, args, settings, log_path)
    return describe(layout.float_dlc, backend, name, settings, log_path)


def quantize(
    layout: Layout,
    settings: Settings,
    backend: Backend,
    users: np.ndarray,
    courses: np.ndarray,
) -> dict[str, Any]:
    """Int8 DLC with the SDK's quantizer, calibrated on the given pairs."""
    assert backend.sdk is not None
    if not layout.float_dlc.exists():
        raise SdkError(f"no {layout.float_dlc}: run `invoke convert` first")
    if settings.export_batch != 1:
        raise SdkError(
            "the SDK quantizer calibrates batch-1 models; export with "
            "--export-batch 1 for the SDK backend"
        )
    name, tool = backend.sdk.require("qairt-quantizer", "snpe-dlc-quant")
    log_path = layout.logs / "quantize.log"
    with raw_folder(layout.sdk_dir / "calibration") as folder:
        listing = write_input_list(folder, users, courses, settings.native_input_files)
        with tool_output(layout.int8_dlc) as out:
            _run(
                backend,
                tool,
                quantizer_args(name, layout.float_dlc, listing, out, settings),
                settings,
                log_path,
            )
    return describe(layout.int8_dlc, backend, name, settings, log_path)


def quantizer_args(
    name: str, dlc: Path, listing: Path, out: Path, settings: Settings
) -> list[Any]:
    """Arguments of the quantizer for the configured bitwidths and methods."""
    act, weights = BITS[settings.activation_type], BITS[settings.weight_type]
    bias = str(settings.bias_bitwidth)
    if name == "qairt-quantizer":
        args: list[Any] = [
            "--input_dlc",
            dlc,
            "--input_list",
            listing,
            "--output_dlc",
            out,
            "--act_bitwidth",
            act,
            "--weights_bitwidth",
            weights,
            "--bias_bitwidth",
            bias,
            "--act_quantizer_calibration",
            settings.act_calibration,
        ]
        if settings.per_channel:
            args.append("--use_per_channel_quantization")
        if settings.native_input_files:
            args.append("--use_native_input_files")
        return args

    if settings.per_channel or settings.act_calibration != "min-max":
        raise SdkError(
            "snpe-dlc-quant (this SDK has no qairt-quantizer) takes neither "
            "--per-channel nor --act-calibration; leave them at their defaults"
        )
    args = [
        f"--input_dlc={dlc}",
        f"--input_list={listing}",
        f"--output_dlc={out}",
        f"--act_bitwidth={act}",
        f"--weights_bitwidth={weights}",
        f"--bias_bitwidth={bias}",
    ]
    if settings.native_input_files:
        args.append("--use_native_input_files")
    return args


@contextlib.contextmanager
def raw_folder(preferred: Path) -> Iterator[Path]:
    """A folder for raw input files whose absolute path has no whitespace.

    Input lists cannot quote paths, so a build folder with a space in its path
    gets its raw files in the system's temporary folder instead.
    """
    preferred = preferred.resolve()
    if not any(c.isspace() for c in str(preferred)):
        shutil.rmtree(preferred, ignore_errors=True)
        preferred.mkdir(parents=True)
        yield preferred
        return
    folder = Path(tempfile.mkdtemp(prefix="coursedlc-raw-"))
    try:
        if any(c.isspace() for c in str(folder)):
            raise SdkError(
                f"input lists cannot hold paths with spaces, and both {preferred} "
                f"and the temporary folder {folder} have one: set TMPDIR (TEMP on "
                "Windows) to a folder without spaces"
            )
        log.info("raw inputs in %s (the build folder's path has a space)", folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_input_list(
    folder: Path, users: np.ndarray, courses: np.ndarray, native: bool
) -> Path:
    """One line per inference, every input on it as ``name:=absolute_path``.

    Raw files hold little-endian float32 values unless ``native`` (int32, the
    inputs' own type, for ``--use_native_input_files``).
    """
    dtype = np.dtype("<i4") if native else np.dtype("<f4")
    lines = []
    for i, (user, course) in enumerate(zip(users, courses, strict=True)):
        paths = []
        for name, value in zip(INPUTS, (user, course), strict=True):
            path = folder / f"{name}_{i:06d}.raw"
            np.array([value], dtype=dtype).tofile(path)
            paths.append(f"{name}:={path.resolve()}")
        lines.append(" ".join(paths))
    listing = folder / "input_list.txt"
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return listing


def describe(
    dlc: Path, backend: Backend, tool: str, settings: Settings, log_path: Path
) -> dict[str, Any]:
    """DLC facts, plus the SDK's own dlc-info output kept beside the DLC."""
    assert backend.sdk is not None
    info = inspect_dlc(dlc, require_ops=False)
    info.update(made_by=backend.describe(), tool=tool)
    found = [n for n in ("qairt-dlc-info", "snpe-dlc-info") if backend.sdk.tool(n)]
    if found:
        text = _run(
            backend, backend.sdk.require(found[0])[1], ["-i", dlc], settings, log_path
        )
        report = dlc.with_name(dlc.name + "-info.txt")
        report.write_text(text, encoding="utf-8")
        info["dlc_info"] = str(report)
    return info


def net_run(
    layout: Layout,
    settings: Settings,
    backend: Backend,
    users: np.ndarray,
    courses: np.ndarray,
) -> np.ndarray | None:
    """The int8 DLC's predictions from ``snpe-net-run``, or None without it."""
    assert backend.sdk is not None
    tool = backend.sdk.tool("snpe-net-run")
    if tool is None:
        return None
    outputs = layout.sdk_dir / "net-run"
    shutil.rmtree(outputs, ignore_errors=True)
    with raw_folder(layout.sdk_dir / "test-inputs") as folder:
        listing = write_input_list(folder, users, courses, native=False)
        _run(
            backend,
            tool,
            [
                "--container",
                layout.int8_dlc,
                "--input_list",
                listing,
                "--output_dir",
                outputs,
            ],
            settings,
            layout.logs / "verify.log",
        )
    predictions = np.empty(len(users), dtype=np.float64)
    for i in range(len(users)):
        raw = outputs / f"Result_{i}" / f"{OUTPUT}.raw"
        if not raw.is_file():
            raise ConversionError(f"snpe-net-run wrote no {raw}; see the verify log")
        predictions[i] = np.fromfile(raw, dtype="<f4")[0]
    return predictions
