"""Reading DLC files: a zip holding ``model`` (a flatbuffer graph), its params
and JSON metadata.

The QNN IR backend writes zip entries with a CRC of 0, which Python's zipfile
rejects on read, so entries are read from their local headers directly. Only
entry bytes are read into memory; nothing is ever extracted to a path taken from
the archive.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from coursedlc.errors import ConversionError
from coursedlc.files import sha256

LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
LOCAL_MAGIC = 0x04034B50

# Layer type names as the QNN IR backend writes them into ``model``.
OP_TYPES = frozenset(
    {
        "Gather",
        "Eltwise_Binary",
        "Eltwise_Unary",
        "Reduce",
        "MatMul",
        "FullyConnected",
        "Concat",
        "Reshape",
        "Cast",
        "Convert",
        "Quantize",
        "Dequantize",
        "Transpose",
        "Softmax",
        "StridedSlice",
        "Split",
        "Tile",
        "ElementWiseNeuron",
        "Relu",
        "Sigmoid",
        "Tanh",
        "Pack",
        "Clip",
    }
)


def read_entry(path: Path, name: str) -> bytes:
    """Bytes of one stored (uncompressed) or deflated entry of a DLC.

    Raises:
        ConversionError: the file is not a zip, lacks the entry, or is cut short.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(name)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConversionError(f"{path}: not a readable DLC archive ({exc})") from None
    except KeyError:
        raise ConversionError(f"{path}: DLC archive has no {name!r} entry") from None

    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(LOCAL_HEADER.size)
        if len(header) < LOCAL_HEADER.size or LOCAL_HEADER.unpack(header)[0] != (
            LOCAL_MAGIC
        ):
            raise ConversionError(f"{path}: entry {name!r} has a damaged header")
        name_len, extra_len = LOCAL_HEADER.unpack(header)[-2:]
        handle.seek(name_len + extra_len, 1)
        data = handle.read(info.compress_size)
    if len(data) != info.compress_size:
        raise ConversionError(
            f"{path}: entry {name!r} is truncated ({len(data)} of "
            f"{info.compress_size} bytes)"
        )
    if info.compress_type == zipfile.ZIP_DEFLATED:
        import zlib

        data = zlib.decompress(data, -15)
    elif info.compress_type != zipfile.ZIP_STORED:
        raise ConversionError(
            f"{path}: entry {name!r} uses unsupported compression {info.compress_type}"
        )
    return data


def flatbuffer_strings(data: bytes) -> list[str]:
    """Printable strings stored flatbuffer-style (u32 length, bytes, NUL)."""
    found = []
    for match in re.finditer(rb"[\x20-\x7e]{2,}\x00", data):
        start, end = match.start(), match.end() - 1
        if start >= 4 and struct.unpack_from("<I", data, start - 4)[0] == end - start:
            found.append(data[start:end].decode("ascii"))
    return found


def inspect_dlc(path: Path, require_ops: bool = True) -> dict[str, Any]:
    """Entries, op types, converter version and hash of a DLC.

    Raises:
        ConversionError: the archive is unreadable, truncated or has no graph
            (or, with ``require_ops``, names no known layer type).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {i.filename: i.file_size for i in archive.infolist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConversionError(f"{path}: not a readable DLC archive ({exc})") from None

    graph = read_entry(path, "model")
    ops = Counter(s for s in flatbuffer_strings(graph) if s in OP_TYPES)
    if not ops and require_ops:
        raise ConversionError(f"{path}: the DLC's 'model' entry names no operations")

    info: dict[str, Any] = {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256(path),
        "entries": entries,
        "ops": dict(sorted(ops.items())),
    }
    history = [n for n in entries if n.startswith("dlc.metadata.history")]
    if history:
        meta = json.loads(read_entry(path, history[0]))
        commands = [
            g.get("converterCommand", {}) for g in meta.get("dlcGenerationInfo", [])
        ]
        if commands:
            info["converter_version"] = commands[-1].get("converterVersion")
            info["converter_tool"] = commands[-1].get("tool")
            info["created"] = commands[-1].get("timestamp")
    return info
