"""The models: output units and the interaction the factorization model adds."""

from __future__ import annotations

import numpy as np
import torch

from coursedlc.dataset import Dataset
from coursedlc.model import ConcatLinearModel, FactorizationModel, build_model
from coursedlc.settings import Settings
from coursedlc.train import fit, rmse


def test_output_is_in_grade_units():
    model = FactorizationModel(3, 2, 4, grade_min=1.0, grade_max=5.0, global_mean=0.5)
    for emb in (model.user_factors, model.course_factors):
        torch.nn.init.zeros_(emb.weight)
    out = model(torch.tensor([0, 2], dtype=torch.int32), torch.tensor([1, 0]).int())
    assert out.shape == (2, 1)
    assert torch.allclose(out, torch.full((2, 1), 3.0))


def test_build_model_by_name():
    assert isinstance(build_model("fm", 2, 2, 3, 0, 100), FactorizationModel)
    assert isinstance(build_model("concat-linear", 2, 2, 3, 0, 100), ConcatLinearModel)


def xor_dataset(copies: int = 50) -> Dataset:
    """Two kinds of students who do well in opposite courses: pure interaction."""
    users, courses, grades = [], [], []
    for s in range(2 * copies):
        for c in range(2):
            users.append(s)
            courses.append(c)
            grades.append(75.0 if (s % 2) == c else 25.0)
    n = len(grades)
    # Every pair is in train; validation repeats train so early stopping works.
    split = np.zeros(n, dtype=np.int8)
    user = np.array(users, dtype=np.int32)
    course = np.array(courses, dtype=np.int32)
    grade = np.array(grades, dtype=np.float32)
    ds = Dataset(
        [f"s{i}" for i in range(2 * copies)],
        ["X", "Y"],
        0.0,
        100.0,
        np.concatenate([user, user]),
        np.concatenate([course, course]),
        np.concatenate([grade, grade]),
        np.concatenate([split, split + 1]),
    )
    return ds


def test_only_the_factorization_model_learns_an_interaction():
    ds = xor_dataset()
    results = {}
    for kind in ("fm", "concat-linear"):
        settings = Settings(
            model=kind,
            dim=4,
            epochs=300,
            lr=0.05,
            weight_decay=0,
            batch_size=64,
            patience=300,
        )
        model, _ = fit(ds, settings)
        results[kind] = rmse(model, *ds.part("train"))
    # Student and course effects alone cannot tell 75 from 25 here: every
    # student and every course averages 50.
    assert results["fm"] < 2.0
    assert results["concat-linear"] > 20.0
