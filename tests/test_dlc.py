"""Reading DLC archives written by the QNN IR backend."""

from __future__ import annotations

import struct
import zipfile

import pytest

from coursedlc.dlc import flatbuffer_strings, inspect_dlc, read_entry
from coursedlc.errors import ConversionError


def test_real_dlcs_name_their_ops_and_converter(built):
    _, layout = built
    for path in (layout.float_dlc, layout.int8_dlc):
        info = inspect_dlc(path)
        assert {"model", "model.params"} <= set(info["entries"])
        assert info["ops"]["Gather"] == 4  # two factor and two bias lookups
        assert info["ops"]["Eltwise_Binary"] >= 1  # the product and the sums
        assert info["ops"]["Reduce"] == 1  # the sum over factors
        assert info["converter_version"].startswith("2.")


def test_the_ir_backend_writes_zero_crcs(built):
    # Python's zipfile refuses these entries; read_entry must not.
    _, layout = built
    with zipfile.ZipFile(layout.float_dlc) as archive:
        assert archive.getinfo("model").CRC == 0
    assert read_entry(layout.float_dlc, "model")


def test_truncated_dlc_is_refused(built, tmp_path):
    _, layout = built
    data = layout.int8_dlc.read_bytes()
    cut = tmp_path / "cut.dlc"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match=r"cut\.dlc"):
        inspect_dlc(cut)


def test_not_a_zip_and_no_model_entry(tmp_path):
    junk = tmp_path / "junk.dlc"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ConversionError, match="not a readable DLC"):
        inspect_dlc(junk)

    empty = tmp_path / "empty.dlc"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("model.params", b"x")
    with pytest.raises(ConversionError, match="no 'model' entry"):
        inspect_dlc(empty)


def test_flatbuffer_strings_need_their_length_prefix():
    blob = struct.pack("<I", 6) + b"Gather\x00" + b"Gather\x00" + struct.pack("<I", 3)
    blob += b"Add\x00"
    assert flatbuffer_strings(blob) == ["Gather", "Add"]
