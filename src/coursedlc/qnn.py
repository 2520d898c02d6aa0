"""The embedded Qualcomm backend: onnxruntime with the onnxruntime-qnn plugin.

Two uses, always in separate sessions (a session that dumps a DLC does not
execute):

* with the QNN IR backend, the session serialises the graph it was given into a
  DLC, one file per QNN partition;
* with the HTP backend, which on x86-64 emulates the Hexagon NPU, a quantized
  model runs as the NPU computes it.

The native libraries print to the process's stderr; that output is kept in
``<build>/logs/<stage>.log`` instead of the console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from coursedlc.dlc import inspect_dlc
from coursedlc.errors import ConversionError
from coursedlc.files import atomic_path

log = logging.getLogger(__name__)

EP = "QNNExecutionProvider"
IR_LIBRARY = {"win32": "QnnIr.dll"}.get(sys.platform, "libQnnIr.so")


@cache
def _plugin() -> tuple[Any, list[Any], Path]:
    """Register the plugin once per process; return (ort, devices, lib dir)."""
    import onnxruntime as ort

    try:
        import onnxruntime_qnn
    except ImportError:
        raise ConversionError(
            "onnxruntime-qnn is not installed (it ships for Linux x86_64 and "
            "Windows, Python >= 3.11): run `python -m pip install -r "
            "requirements/dev.txt`"
        ) from None
    library = Path(onnxruntime_qnn.get_library_path())
    ort.register_execution_provider_library(EP, str(library))
    devices = [d for d in ort.get_ep_devices() if d.ep_name == EP]
    if not devices:
        raise ConversionError(f"{library} registered no {EP} device")
    return ort, devices, library.parent


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (where the native libraries write) to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def session(model: Path, options: dict[str, str]) -> Any:
    """An inference session with the QNN provider and placement recording."""
    ort, devices, _ = _plugin()
    opts = ort.SessionOptions()
    opts.log_severity_level = 2
    opts.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    opts.add_provider_for_devices(devices, options)
    log.debug("QNN session for %s with %s", model, options)
    return ort.InferenceSession(str(model), sess_options=opts)


def placement(sess: Any, graph_outputs: set[str]) -> dict[str, Any]:
    """Which nodes run in QNN partitions and which stay on the CPU.

    Raises:
        ConversionError: compute is split into several QNN partitions, or a node
            other than a final DequantizeLinear of a graph output is on the CPU.
    """
    partitions = []
    on_cpu = []
    for subgraph in sess.get_provider_graph_assignment_info():
        nodes = [(n.name, n.op_type) for n in subgraph.get_nodes()]
        if subgraph.ep_name == EP:
            partitions.append(nodes)
        else:
            on_cpu.extend(nodes)

    # An int8 model's output DequantizeLinear may stay on the CPU: the DLC then
    # outputs the quantized tensor together with its encoding.
    output_dq = {
        name
        for name, op in on_cpu
        if op == "DequantizeLinear"
        and any(name == f"{out}_DequantizeLinear" for out in graph_outputs)
    }
    stray = [f"{name} ({op})" for name, op in on_cpu if name not in output_dq]
    if len(partitions) != 1 or stray:
        raise ConversionError(
            f"the QNN backend took {len(partitions)} partition(s) (expected 1) and "
            f"left {len(stray)} compute node(s) on the CPU: {', '.join(stray) or '-'}."
            " The model uses an op or shape the HTP does not support; keep the "
            "shapes static and the ops to Gather/Mul/Add/ReduceSum/MatMul."
        )
    return {
        "qnn_partitions": 1,
        "qnn_nodes": len(partitions[0]),
        "cpu_nodes": sorted(output_dq),
    }


def graph_outputs(model: Path) -> set[str]:
    """Names of a model's graph outputs (without loading its weights)."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False)
    return {o.name for o in proto.graph.output}


def htp_options(soc_model: str) -> dict[str, str]:
    """Provider options for the HTP backend (the NPU emulator on x86-64)."""
    # The emulator failed graph finalize without a SoC model in a probe.
    return {"backend_type": "htp", "soc_model": soc_model}


def write_dlc(model: Path, dlc: Path, soc_model: str, log_path: Path) -> dict[str, Any]:
    """Serialise ``model`` to ``dlc`` through the QNN IR backend.

    Raises:
        ConversionError: placement is not one full QNN partition, no or several
            DLCs were written, or the DLC is not a readable archive.
    """
    dlc.parent.mkdir(parents=True, exist_ok=True)
    with native_output_to(log_path):
        _, _, libdir = _plugin()
    with tempfile.TemporaryDirectory(prefix=".dump-", dir=dlc.parent) as dump:
        options = {
            **htp_options(soc_model),
            "dump_qnn_ir_dlc": "1",
            "dump_qnn_ir_dlc_dir": str(Path(dump).resolve()),
            "qnn_ir_backend_path": str(libdir / IR_LIBRARY),
        }
        log.info("QNN IR: %s -> %s (native log: %s)", model, dlc, log_path)
        with native_output_to(log_path):
            sess = session(model, options)
        placed = placement(sess, graph_outputs(model))
        del sess

        written = sorted(Path(dump).glob("*.dlc"))
        if len(written) != 1:
            raise ConversionError(
                f"the QNN IR backend wrote {len(written)} DLC file(s) for {model}, "
                f"expected 1; see {log_path}"
            )
        info = inspect_dlc(written[0])
        with atomic_path(dlc) as tmp:
            os.replace(written[0], tmp)
    info.update(path=str(dlc), placement=placed)
    return info
