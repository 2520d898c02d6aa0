"""The embedded QNN backend: placement checks, DLC writing, the HTP emulator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from coursedlc import qnn
from coursedlc.errors import ConversionError
from coursedlc.model import FactorizationModel
from coursedlc.verify import htp_predict


def test_dynamic_batch_is_refused_naming_the_cpu_nodes(tmp_path):
    model = FactorizationModel(10, 4, 3, 0, 100).eval()
    path = tmp_path / "dynamic.onnx"
    example = (torch.zeros(2, dtype=torch.int32),) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=["user_id", "course_id"],
            output_names=["prediction"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"user_id": {0: "b"}, "course_id": {0: "b"}},
        )
    dlc = tmp_path / "dlc" / "model.dlc"
    with pytest.raises(ConversionError) as err:
        qnn.write_dlc(path, dlc, "60", tmp_path / "convert.log")
    assert "Gather" in str(err.value) and "on the CPU" in str(err.value)
    assert not dlc.exists()
    assert not list(dlc.parent.glob("*"))  # no dump folder or partial file left


def test_write_dlc_records_one_full_partition(built):
    _, layout = built
    from coursedlc.files import read_json

    float_info = read_json(layout.float_dlc_info)
    assert float_info["placement"]["qnn_partitions"] == 1
    assert float_info["placement"]["cpu_nodes"] == []
    int8_info = read_json(layout.int8_dlc_info)
    # Only the output's DequantizeLinear may stay on the CPU.
    assert int8_info["placement"]["cpu_nodes"] == ["prediction_DequantizeLinear"]


def test_batched_emulator_runs_match_single_runs(built, tmp_path):
    _, layout = built
    users = np.arange(12, dtype=np.int32)
    courses = (np.arange(12, dtype=np.int32) * 5) % 12
    single, _ = htp_predict(layout.qdq, users, courses, 1, "60", tmp_path / "a.log")
    batched, _ = htp_predict(layout.qdq, users, courses, 5, "60", tmp_path / "b.log")
    assert np.array_equal(single, batched)
