"""The quantize stage: calibration data and configurable types."""

from __future__ import annotations

import shutil

import onnx
from onnx import numpy_helper

from coursedlc.dataset import Dataset
from coursedlc.dlc import inspect_dlc
from coursedlc.files import read_json
from coursedlc.quantize import calibration_pairs, quantize
from coursedlc.settings import Layout


def zero_point_types(path):
    graph = onnx.load(path).graph
    names = {n.input[2] for n in graph.node if n.op_type == "QuantizeLinear"}
    return {
        numpy_helper.to_array(i).dtype.name
        for i in graph.initializer
        if i.name in names
    }


def test_calibration_uses_many_distinct_training_pairs(built):
    settings, layout = built
    record = read_json(layout.calibration)
    train_size = read_json(layout.summary)["split"]["train"]
    assert record["pairs"] == min(settings.calibration_samples, train_size)
    assert record["distinct_students"] > 50 and record["distinct_courses"] > 5

    users, courses = calibration_pairs(Dataset.load(layout), 64, seed=0)
    again = calibration_pairs(Dataset.load(layout), 64, seed=0)
    assert (
        len(users) == 64 and (users == again[0]).all() and (courses == again[1]).all()
    )


def test_uint16_activations(built, tmp_path):
    settings, _ = built
    out = tmp_path / "copy"
    shutil.copytree(settings.out, out)
    layout = Layout(out)
    assert zero_point_types(layout.qdq) == {"uint8"}

    quantize(
        layout, settings.model_copy(update={"out": out, "activation_type": "uint16"})
    )
    assert "uint16" in zero_point_types(layout.qdq)
    assert inspect_dlc(layout.int8_dlc)["ops"]["Gather"] == 4
    assert read_json(layout.calibration)["activation_type"] == "uint16"
