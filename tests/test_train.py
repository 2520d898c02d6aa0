"""The train stage: determinism, early stopping, artifacts, accuracy."""

from __future__ import annotations

import json

import pytest
import torch

from coursedlc import als, dataset, synthetic
from coursedlc.files import read_json
from coursedlc.settings import Layout
from coursedlc.train import load_model, train

from conftest import settings_for, small_grades


def prepared(tmp_path, write_grades, grades=None, **overrides):
    path = write_grades(grades or small_grades())
    settings = settings_for(path, tmp_path / "build", **overrides)
    layout = Layout(settings.out)
    dataset.prepare(
        settings.data,
        layout,
        settings.grade_min,
        settings.grade_max,
        settings.seed,
        settings.validation_fraction,
        settings.test_fraction,
    )
    return settings, layout


def test_same_seed_gives_identical_weights(tmp_path, write_grades):
    settings, layout = prepared(tmp_path, write_grades)
    train(layout, settings)
    first = layout.weights.read_bytes()
    train(layout, settings)
    assert layout.weights.read_bytes() == first

    other = settings.model_copy(update={"seed": settings.seed + 1})
    train(layout, other)
    assert layout.weights.read_bytes() != first


def test_artifacts_and_early_stopping(tmp_path, write_grades):
    settings, layout = prepared(tmp_path, write_grades, epochs=200, patience=3)
    metrics = train(layout, settings)

    history = metrics["history"]
    best = min(history, key=lambda h: h["validation_rmse"])
    assert metrics["training"]["best_epoch"] == best["epoch"]
    # It stopped three sweeps after the last one that gained more than MIN_GAIN.
    record, progress = float("inf"), 0
    for h in history:
        if h["validation_rmse"] < record * (1 - als.MIN_GAIN):
            progress = h["epoch"]
        record = min(record, h["validation_rmse"])
    assert best["epoch"] >= progress
    assert len(history) == progress + 3 < 200
    # The saved weights are the best epoch's, not the last one's.
    assert metrics["rmse"]["validation"] == pytest.approx(best["validation_rmse"])

    state = torch.load(layout.weights, weights_only=True)
    assert "user_factors.weight" in state
    assert layout.loss_curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_json(layout.metrics)["rmse"] == metrics["rmse"]
    reloaded = load_model(layout)
    assert torch.equal(reloaded.user_factors.weight, state["user_factors.weight"])


def test_float_model_beats_global_mean(tmp_path, write_grades):
    settings, layout = prepared(tmp_path, write_grades)
    metrics = train(layout, settings)
    assert metrics["rmse"]["test"] < 0.8 * metrics["baseline_global_mean_rmse"]["test"]


@pytest.mark.slow
def test_recovers_structure_down_to_the_noise_level(tmp_path, write_grades):
    """50k grades, rank 3, noise sd 5: test RMSE within 10% of 5."""
    noise = 5.0
    grades = synthetic.generate(
        students=1000, courses=60, per_student=50, noise=noise, seed=0
    )
    settings, layout = prepared(tmp_path, write_grades, grades, epochs=200)
    metrics = train(layout, settings)
    print(json.dumps(metrics["rmse"]), metrics["baseline_global_mean_rmse"]["test"])
    assert metrics["rmse"]["test"] <= 1.10 * noise
    assert metrics["baseline_global_mean_rmse"]["test"] > 2 * noise


def test_adam_stops_patience_epochs_after_its_best(tmp_path, write_grades):
    settings, layout = prepared(
        tmp_path, write_grades, epochs=300, patience=3, optimizer="adam"
    )
    metrics = train(layout, settings)
    history = metrics["history"]
    best = min(history, key=lambda h: h["validation_rmse"])
    assert metrics["training"]["optimizer"] == "adam"
    assert metrics["training"]["best_epoch"] == best["epoch"]
    assert len(history) == best["epoch"] + 3 < 300
