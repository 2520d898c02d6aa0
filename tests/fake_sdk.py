"""A fake QAIRT SDK tree for tests: strict about how it is called, useless otherwise.

Its tools check the documented contract (flags, input shapes, the input-list
format, raw file sizes and types, the environment, the venv's Python), record
each call in ``<root>/calls.jsonl`` and write placeholder DLCs that say they are
fake. They never stand in for a model's result.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

PLATFORM = "x86_64-linux-clang"

COMMON = r"""
import argparse, json, os, sys, zipfile
from pathlib import Path

TOOL = Path(__file__).name
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "sdk.yaml").exists())
PLATFORM = "@PLATFORM@"


def fail(message, code=2):
    print(f"{TOOL}: error: {message}", file=sys.stderr)
    sys.exit(code)


def check_environment(python_tool=True):
    env = os.environ
    if Path(env.get("QAIRT_SDK_ROOT", "")).resolve() != ROOT.resolve():
        fail(f"QAIRT_SDK_ROOT is {env.get('QAIRT_SDK_ROOT')!r}, expected {ROOT}")
    def parts(key):
        return [Path(p).resolve() for p in env.get(key, "").split(os.pathsep) if p]

    if (ROOT / "lib" / "python").resolve() not in parts("PYTHONPATH"):
        fail("PYTHONPATH lacks the SDK's lib/python")
    if (ROOT / "bin" / PLATFORM).resolve() not in parts("PATH"):
        fail("PATH lacks the SDK's bin folder")
    if (ROOT / "lib" / PLATFORM).resolve() not in parts("LD_LIBRARY_PATH"):
        fail("LD_LIBRARY_PATH lacks the SDK's lib folder")
    if python_tool:
        venv = env.get("VIRTUAL_ENV")
        if not venv or Path(sys.prefix).resolve() != Path(venv).resolve():
            fail(f"not running under the SDK venv's Python (sys.prefix {sys.prefix})")
        wanted = (ROOT / "python-version").read_text().strip()
        have = "%d.%d" % sys.version_info[:2]
        if have != wanted:
            fail(f"No module named 'libPyIrGraph' (Python {have}, built for {wanted})")
    with open(ROOT / "calls.jsonl", "a") as log:
        log.write(json.dumps({"tool": TOOL, "argv": sys.argv[1:]}) + "\n")
    if (ROOT / f"hang-{TOOL}").exists():
        import time
        time.sleep(600)
    if (ROOT / f"fail-{TOOL}").exists():
        print("loading model ...\nsomething went wrong inside the tool")
        fail("simulated failure", code=3)


def parser():
    return argparse.ArgumentParser(prog=TOOL, allow_abbrev=False)


def write_fake_dlc(path, inputs):
    if (ROOT / f"silent-{TOOL}").exists():
        print("done")  # and writes nothing
        return
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model", b"FAKE QAIRT DLC: placeholder, not a model" * 50)
        archive.writestr("fake_inputs.json", json.dumps(inputs))
    if (ROOT / f"truncate-{TOOL}").exists():
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 3])
    print(f"wrote fake DLC {path}")


def read_fake_inputs(path):
    if not zipfile.is_zipfile(path):
        fail(f"{path} is not a DLC")
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("fake_inputs.json"))


def check_input_list(listing, inputs, native):
    import struct
    for number, line in enumerate(Path(listing).read_text().splitlines(), 1):
        if not line.strip():
            continue
        if line[0] in "#%":
            fail(f"{listing}:{number}: output lines are not for the quantizer")
        seen = {}
        for token in line.split():
            if token[0] in "\"'" or token[-1] in "\"'":
                fail(f"{listing}:{number}: quoted path {token}")
            name, sep, path = token.partition(":=")
            if not sep:
                fail(f"{listing}:{number}: {token!r} is not name:=path")
            seen[name] = Path(path)
        if set(seen) != set(inputs):
            fail(f"{listing}:{number}: inputs {sorted(seen)}, "
                 f"expected {sorted(inputs)}")
        for name, path in seen.items():
            if not path.is_absolute() or not path.is_file():
                fail(f"{listing}:{number}: {path} is not an absolute path to a file")
            count = 1
            for dim in inputs[name]:
                count *= dim
            data = path.read_bytes()
            if len(data) != 4 * count:
                fail(f"{path}: {len(data)} bytes, expected {4 * count}")
            values = struct.unpack(f"<{count}{'i' if native else 'f'}", data)
            if any(v < 0 or v != int(v) for v in values):
                fail(f"{path}: values {values} are not ids as "
                     f"{'int32' if native else 'float32'}")
"""

CONVERTER = r"""
def main():
    check_environment()
    p = parser()
    p.add_argument("--input_network", "-i", required=True)
    p.add_argument("--output_path", "-o", required=True)
    p.add_argument("--source_model_input_shape", "-s", nargs=2, action="append",
                   default=[], metavar=("NAME", "DIMS"))
    args = p.parse_args()
    import onnx
    graph = onnx.load(args.input_network).graph
    model = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
             for i in graph.input}
    given = {}
    for name, dims in args.source_model_input_shape:
        if name in given:
            fail(f"shape of {name} given twice")
        given[name] = [int(d) for d in dims.split(",")]
    for name, dims in model.items():
        if name not in given:
            fail(f"no --source_model_input_shape for input {name}")
        if len(given[name]) != len(dims):
            fail(f"{name}: rank {len(given[name])} given, model has rank {len(dims)}")
    if set(given) - set(model):
        fail(f"unknown inputs {sorted(set(given) - set(model))}")
    write_fake_dlc(args.output_path, given)

main()
"""

LEGACY_CONVERTER = r"""
def main():
    check_environment()
    p = parser()
    p.add_argument("-i", required=True)
    p.add_argument("-o", required=True)
    p.add_argument("-d", nargs=2, action="append", default=[])
    args = p.parse_args()
    write_fake_dlc(args.o, {n: [int(x) for x in d.split(",")] for n, d in args.d})

main()
"""

QUANTIZER = r"""
def main():
    check_environment()
    p = parser()
    p.add_argument("--input_dlc", "-i", required=True)
    p.add_argument("--output_dlc", "-o", required=True)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--input_list", "-l")
    group.add_argument("--enable_float_fallback", action="store_true")
    p.add_argument("--act_bitwidth", choices=["8", "16"], default="8")
    p.add_argument("--weights_bitwidth", choices=["4", "8", "16"], default="8")
    p.add_argument("--bias_bitwidth", choices=["8", "32"], default="8")
    methods = ["min-max", "sqnr", "entropy", "mse", "percentile"]
    p.add_argument("--act_quantizer_calibration", choices=methods)
    p.add_argument("--param_quantizer_calibration", choices=methods)
    p.add_argument("--use_per_channel_quantization", action="store_true")
    p.add_argument("--use_per_row_quantization", action="store_true")
    p.add_argument("--use_native_input_files", action="store_true")
    args = p.parse_args()
    inputs = read_fake_inputs(args.input_dlc)
    if any(dims[0] != 1 for dims in inputs.values()):
        fail("the DLC's batch dimension must be 1 for calibration")
    check_input_list(args.input_list, inputs, args.use_native_input_files)
    write_fake_dlc(args.output_dlc, inputs)

main()
"""

LEGACY_QUANTIZER = r"""
def main():
    check_environment()
    p = parser()
    p.add_argument("--input_dlc", required=True)
    p.add_argument("--input_list", required=True)
    p.add_argument("--output_dlc", required=True)
    p.add_argument("--act_bitwidth", choices=["8", "16"])
    p.add_argument("--weights_bitwidth", choices=["8", "16"])
    p.add_argument("--bias_bitwidth", choices=["8", "32"])
    p.add_argument("--use_native_input_files", action="store_true")
    args = p.parse_args()
    for value in (args.input_dlc, args.input_list, args.output_dlc):
        if value.startswith("="):
            fail("malformed --flag=value")
    inputs = read_fake_inputs(args.input_dlc)
    check_input_list(args.input_list, inputs, args.use_native_input_files)
    write_fake_dlc(args.output_dlc, inputs)

main()
"""

DLC_INFO = r"""
def main():
    check_environment()
    p = parser()
    p.add_argument("-i", required=True)
    args = p.parse_args()
    inputs = read_fake_inputs(args.i)
    print("FAKE dlc-info for", args.i)
    for name, dims in inputs.items():
        print(f"| input | {name} | {dims} |")

main()
"""

NET_RUN = r"""
def main():
    check_environment(python_tool=False)
    p = parser()
    p.add_argument("--container", required=True)
    p.add_argument("--input_list", required=True)
    p.add_argument("--output_dir", required=True)
    args = p.parse_args()
    inputs = read_fake_inputs(args.container)
    check_input_list(args.input_list, inputs, native=False)
    lines = [l for l in Path(args.input_list).read_text().splitlines() if l.strip()]
    for i in range(len(lines)):
        folder = Path(args.output_dir) / f"Result_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        # A placeholder output: zero, whatever the input.
        (folder / "prediction.raw").write_bytes(b"\0\0\0\0")

main()
"""

CHECK = r"""
def main():
    if sys.prefix == sys.base_prefix:
        fail("run me inside a Python virtual environment", code=1)
    from importlib.metadata import version, PackageNotFoundError
    pins = {"numpy": "1.26.4", "pandas": "2.0.1", "protobuf": "3.19.6",
            "packaging": "24.0"}
    bad = []
    for name, pin in pins.items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have != pin:
            bad.append(f"{name} {have} (needs {pin})")
    if bad:
        print("FAKE check: mismatched:", ", ".join(bad))
        sys.exit(1)
    print("FAKE check: all python dependencies satisfied")

main()
"""

TOOLS = {
    "qairt-converter": CONVERTER,
    "qairt-quantizer": QUANTIZER,
    "qairt-dlc-info": DLC_INFO,
    "snpe-onnx-to-dlc": LEGACY_CONVERTER,
    "snpe-dlc-quant": LEGACY_QUANTIZER,
    "snpe-dlc-info": DLC_INFO,
    "snpe-net-run": NET_RUN,
}
MODERN = ("qairt-converter", "qairt-quantizer", "qairt-dlc-info")
LEGACY = ("snpe-onnx-to-dlc", "snpe-dlc-quant", "snpe-dlc-info")


def make_fake_sdk(
    root: Path,
    tools: tuple[str, ...] = MODERN,
    version: str = "2.36.0.250627",
    python: str = f"{sys.version_info[0]}.{sys.version_info[1]}",
    check: bool = True,
    platforms: tuple[str, ...] = (PLATFORM,),
) -> Path:
    """Build the tree under ``root`` and return ``root``."""
    (root / "lib" / "python").mkdir(parents=True)
    (root / "include" / "QNN").mkdir(parents=True)
    (root / "sdk.yaml").write_text(f"version: {version}\nbuild_id: fake\n")
    (root / "python-version").write_text(python)
    for folder in platforms:
        (root / "bin" / folder).mkdir(parents=True)
        (root / "lib" / folder).mkdir(parents=True)
    common = COMMON.replace("@PLATFORM@", platforms[0])
    for name in tools:
        _script(root / "bin" / platforms[0] / name, common + TOOLS[name])
    if check:
        _script(root / "bin" / "check-python-dependency", common + CHECK)
    return root


def _script(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env python3\n" + textwrap.dedent(body))
    path.chmod(0o755)


def calls(root: Path) -> list[dict]:
    """Every recorded tool call, in order."""
    log = root / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def make_tool_venv(path: Path) -> Path:
    """A venv of the running Python that sees its packages (onnx for the fake)."""
    import venv

    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(path)
    from coursedlc.sdk_venv import MARKER

    (path / MARKER).write_text(
        json.dumps({"python": f"{sys.version_info[0]}.{sys.version_info[1]}"})
    )
    return path
