"""The verify stage: int8 on the HTP emulator against the float model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from coursedlc.errors import AccuracyError
from coursedlc.files import read_json
from coursedlc.settings import Layout
from coursedlc.verify import verify


def test_verify_record_of_the_built_model(built):
    settings, layout = built
    result = read_json(layout.verify)
    assert result["pairs"] == read_json(layout.summary)["split"]["test"]
    assert result["int8_rmse"] <= result["float_rmse"] * (1 + settings.int8_tolerance)
    assert 0 < result["max_abs_float_int8"] < 5
    metrics = read_json(layout.metrics)
    assert result["float_rmse"] == pytest.approx(metrics["rmse"]["test"], abs=1e-3)


def test_accuracy_loss_over_tolerance_fails_without_a_record(
    built, tmp_path, monkeypatch
):
    settings, _ = built
    out = tmp_path / "copy"
    shutil.copytree(settings.out, out)
    layout = Layout(out)
    layout.verify.unlink()
    real = __import__("coursedlc.verify", fromlist=["htp_predict"]).htp_predict

    def worse(*args, **kwargs):
        # The decision under test is the threshold, so the emulator's real
        # predictions are shifted by three grade points.
        predictions, placed = real(*args, **kwargs)
        return predictions + 3.0, placed

    monkeypatch.setattr("coursedlc.verify.htp_predict", worse)
    with pytest.raises(AccuracyError, match=r"exceeds float RMSE .* by more than 2.0%"):
        verify(layout, settings.model_copy(update={"out": out}))
    assert not layout.verify.exists()
    assert np.isfinite(read_json(layout.metrics)["rmse"]["test"])
