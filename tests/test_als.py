"""Alternating least squares: each half-sweep is the exact ridge solution, CG
lands where the exact solve does, and the strength search keeps its best run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coursedlc import als, synthetic
from coursedlc.dataset import Dataset
from coursedlc.errors import ConfigError
from coursedlc.settings import Settings
from coursedlc.train import rmse


def random_grades(rows: int, columns: int, per_row: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = np.repeat(np.arange(rows), per_row)
    picks = [rng.choice(columns, per_row, replace=False) for _ in range(rows)]
    c = np.concatenate(picks)
    return r.astype(np.int32), c.astype(np.int32), rng.normal(0, 0.1, len(r))


def ridge_by_hand(r, c, values, other, l2, rows):
    """Per row: argmin sum (v - f.x - other_bias)^2 + l2 |x|^2, f = [factors, 1]."""
    dim = other.shape[1] - 1
    out = np.zeros((rows, dim + 1))
    for i in range(rows):
        seen = r == i
        features = np.hstack([other[c[seen], :dim], np.ones((seen.sum(), 1))])
        target = values[seen] - other[c[seen], dim]
        a = features.T @ features + l2 * np.eye(dim + 1)
        out[i] = np.linalg.solve(a, features.T @ target)
    return out


@pytest.mark.parametrize(("rows", "columns"), [(als.EXACT_ROWS + 50, 15), (6, 50)])
def test_a_half_sweep_is_the_ridge_solution_of_every_row(rows, columns):
    # Both ways of building the normal equations: sparse products for many
    # rows, one product per row for few. Exact solves in both (cg_steps=0).
    r, c, values = random_grades(rows, columns, per_row=5)
    side = als._Side.build(r, c, values.astype(np.float32), (rows, columns))
    other = np.random.default_rng(1).normal(0, 0.5, (columns, 4))
    start = torch.zeros(rows, 4)
    other_t = torch.from_numpy(other).float()
    solved = als._solve(side, other_t, 0.7, start, cg_steps=0)
    got, sse = solved[0], als._squared_error(side, other_t, 0.7, solved)
    expected = ridge_by_hand(r, c, values, other, 0.7, rows)
    np.testing.assert_allclose(got.numpy(), expected, atol=2e-5)
    # The error read off the normal equations is the error of predicting.
    predicted = (other[c, :3] * expected[r, :3]).sum(1) + expected[r, 3] + other[c, 3]
    assert sse == pytest.approx(float(np.sum((values - predicted) ** 2)), rel=1e-4)


def test_conjugate_gradient_reaches_the_exact_solution():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(300, 9, 9))
    a = torch.from_numpy(m @ m.transpose(0, 2, 1) + 0.5 * np.eye(9))
    b = torch.from_numpy(rng.normal(size=(300, 9)))
    exact = torch.linalg.solve(a, b)
    few = als._conjugate_gradient(a, b, torch.zeros(300, 9, dtype=a.dtype), 3)
    full = als._conjugate_gradient(a, b, torch.zeros(300, 9, dtype=a.dtype), 9)
    assert float((few - exact).abs().max()) > 1e-3  # three steps are not enough
    torch.testing.assert_close(full, exact, atol=1e-6, rtol=1e-6)
    # Started at the answer, it stays there (the clamps keep 0/0 out).
    torch.testing.assert_close(
        als._conjugate_gradient(a, b, exact, 3), exact, atol=1e-9, rtol=0
    )


def dataset_from(grades: dict, seed: int = 0) -> Dataset:
    users, courses, values, split = [], [], [], []
    students, course_ids = {}, {}
    rng = np.random.default_rng(seed)
    for key, entries in grades.items():
        student = students.setdefault(key.rsplit("-", 1)[0], len(students))
        for e in entries:
            users.append(student)
            courses.append(course_ids.setdefault(e["course_id"], len(course_ids)))
            values.append(e["course_grade"])
            split.append(rng.choice(3, p=[0.8, 0.1, 0.1]))
    return Dataset(
        list(students),
        list(course_ids),
        0.0,
        100.0,
        np.array(users, dtype=np.int32),
        np.array(courses, dtype=np.int32),
        np.array(values, dtype=np.float32),
        np.array(split, dtype=np.int8),
    )


@pytest.fixture(scope="module")
def structured() -> Dataset:
    grades = synthetic.generate(
        students=3000, courses=80, per_student=20, rank=4, noise=5.0, seed=4
    )
    return dataset_from(grades)


def test_few_cg_steps_fit_as_well_as_exact_solves(structured):
    # 3,000 students: above EXACT_ROWS, so the student side takes CG steps.
    assert len(structured.students) > als.EXACT_ROWS
    scores = {}
    for steps in (0, 3):
        settings = Settings(cg_steps=steps, l2=(0.03,), epochs=60)
        model, _ = als.fit(structured, settings)
        scores[steps] = rmse(model, *structured.part("test"))
    assert scores[3] == pytest.approx(scores[0], rel=0.01)
    assert scores[0] < 1.3 * 5.0  # near the noise, far from the 13-point spread


def test_strength_search_keeps_the_best_validation_run(structured):
    settings = Settings(l2=(0.2, 0.001, 0.03), epochs=60)
    model, fitted = als.fit(structured, settings)
    tried = [run["l2"] for run in fitted["l2_search"]]
    assert tried == [0.03, 0.001, 0.2]  # the middle first, then outwards
    best = min(fitted["l2_search"], key=lambda run: run["validation_rmse"])
    assert fitted["l2"] == best["l2"] == 0.03
    assert rmse(model, *structured.part("validation")) == pytest.approx(
        best["validation_rmse"], rel=1e-5
    )
    users, courses, _ = structured.part("train")
    per_student = len(users) / len(np.unique(users))
    per_course = len(courses) / len(np.unique(courses))
    assert fitted["l2_scale"] == pytest.approx(
        np.sqrt(per_student) + np.sqrt(per_course), rel=1e-6
    )


def test_l2_and_optimizer_settings():
    assert Settings.load({"l2": "0.1,0.5"}).l2 == (0.1, 0.5)
    assert Settings.load({"l2": "0.2"}).l2 == (0.2,)
    assert Settings.load({"l2": [0.4]}).l2 == (0.4,)
    assert Settings(model="concat-linear").solver == "adam"
    assert Settings().solver == "als"
    with pytest.raises(ConfigError, match="l2"):
        Settings.load({"l2": "0.1,0"})
    with pytest.raises(ConfigError, match="optimizer als fits the fm model only"):
        Settings.load({"model": "concat-linear", "optimizer": "als"})
