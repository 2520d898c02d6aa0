"""The export stage: graph contract and the parity check."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto

from coursedlc.errors import ParityError
from coursedlc.export import check_parity, export, export_onnx
from coursedlc.model import FactorizationModel
from coursedlc.settings import Layout


def trained_like(seed: int = 0) -> FactorizationModel:
    torch.manual_seed(seed)
    model = FactorizationModel(30, 6, 4, grade_min=0, grade_max=20, global_mean=0.6)
    with torch.no_grad():
        for emb in (
            model.user_factors,
            model.course_factors,
            model.user_bias,
            model.course_bias,
        ):
            emb.weight.normal_(0, 0.3)
    return model.eval()


PAIRS = (np.arange(30, dtype=np.int32), np.arange(30, dtype=np.int32) % 6)


@pytest.mark.parametrize("batch", [1, 4])
def test_graph_has_static_int32_inputs_and_grade_output(tmp_path, batch):
    path = tmp_path / "model.onnx"
    export_onnx(trained_like(), path, batch)
    graph = onnx.load(path).graph

    inputs = {i.name: i.type.tensor_type for i in graph.input}
    assert set(inputs) == {"user_id", "course_id"}
    for tensor in inputs.values():
        assert tensor.elem_type == TensorProto.INT32
        assert [d.dim_value for d in tensor.shape.dim] == [batch]
    (output,) = graph.output
    assert output.name == "prediction"
    assert [d.dim_value for d in output.type.tensor_type.shape.dim] == [batch, 1]
    assert {"Gather", "Mul", "ReduceSum"} <= {n.op_type for n in graph.node}

    result = check_parity(path, trained_like(), *PAIRS, tolerance=1e-3)
    assert result["max_abs_diff"] <= 1e-3 and result["pairs"] == 30


def test_parity_fails_when_weights_differ(tmp_path):
    path = tmp_path / "model.onnx"
    export_onnx(trained_like(), path, 1)
    swapped = trained_like()
    with torch.no_grad():
        # Two students' factors exchanged: the classic silent export mismatch.
        swapped.user_factors.weight[[3, 7]] = swapped.user_factors.weight[[7, 3]]

    with pytest.raises(ParityError) as err:
        check_parity(
            path,
            swapped,
            *PAIRS,
            tolerance=1e-3,
            vocab=([f"s{i}" for i in range(30)], list("ABCDEF")),
        )
    message = str(err.value)
    assert "max |difference|" in message and "tolerance 0.001" in message
    assert "student 's3'" in message or "student 's7'" in message


def test_export_stage_removes_a_model_that_fails_parity(built, monkeypatch, tmp_path):
    settings, _ = built
    out = tmp_path / "copy"
    shutil.copytree(settings.out, out)
    layout = Layout(out)

    def wrong_model(model, path, batch):
        other = type(model)(
            model.user_factors.num_embeddings,
            model.course_factors.num_embeddings,
            model.user_factors.embedding_dim,
            0,
            100,
        )
        export_onnx(other, path, batch)

    monkeypatch.setattr("coursedlc.export.export_onnx", wrong_model)
    with pytest.raises(ParityError):
        export(layout, settings.model_copy(update={"out": out}))
    assert not layout.onnx.exists()
