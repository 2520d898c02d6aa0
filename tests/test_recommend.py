"""Recommendations from a finished build, and the recommendation models."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import coursedlc
from coursedlc.dataset import Dataset
from coursedlc.dlc import inspect_dlc
from coursedlc.errors import CourseDLCError
from coursedlc.ranking import recommend
from coursedlc.train import load_model, predict

from conftest import invoke


def a_student(layout):
    data = Dataset.load(layout)
    user = int(data.user[0])
    taken = {data.courses[c] for c in data.course[data.user == user]}
    return data, user, data.students[user], taken


def test_float_ranking_is_the_models_own(built):
    _, layout = built
    data, user, student, taken = a_student(layout)
    found = recommend(student, layout.out, top=3)

    assert len(found) == 3 and all(r.source == "float" for r in found)
    assert not {r.course for r in found} & taken
    grades = [r.predicted_grade for r in found]
    assert grades == sorted(grades, reverse=True)
    # The same pairs through the trained PyTorch model.
    index = [data.courses.index(r.course) for r in found]
    expected = predict(
        load_model(layout), np.full(3, user, np.int32), np.array(index, np.int32)
    )
    assert np.allclose(grades, expected, atol=1e-3)
    # Nothing untaken ranks above the last one returned.
    every = recommend(student, layout.out, top=100)
    assert len(every) == len(data.courses) - len(taken)
    assert every[:3] == found


def test_int8_ranking_runs_on_the_emulator(built):
    _, layout = built
    _, _, student, _ = a_student(layout)
    floats = {r.course: r.predicted_grade for r in recommend(student, layout.out, 100)}
    ints = recommend(student, layout.out, top=100, model="int8")
    assert {r.source for r in ints} == {"int8"}
    assert {r.course for r in ints} == set(floats)
    assert max(abs(r.predicted_grade - floats[r.course]) for r in ints) < 3


def test_unknown_student_gets_the_cold_start_ranking(built, caplog):
    _, layout = built
    data = Dataset.load(layout)
    with caplog.at_level("WARNING", logger="coursedlc"):
        found = coursedlc.recommend("no-such-student", str(layout.out), top=4)
    assert "has no grades" in caplog.text
    assert [r.source for r in found] == ["cold start"] * 4
    _, courses, grades = data.part("train")
    means = {c: grades[courses == i].mean() for i, c in enumerate(data.courses)}
    best = sorted(means, key=lambda c: -means[c])[:4]
    assert [r.course for r in found] == best


def test_bad_arguments(built):
    _, layout = built
    with pytest.raises(CourseDLCError, match="at least one"):
        recommend("x", layout.out, top=0)
    with pytest.raises(CourseDLCError, match="use float or int8"):
        recommend("x", layout.out, model="int4")  # type: ignore[arg-type]


def test_recommendation_models_score_every_course_at_once(built):
    _, layout = built
    courses = len(Dataset.load(layout).courses)
    for path in (layout.onnx_recommend, layout.qdq_recommend):
        graph = onnx.load(path).graph
        assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [
            courses
        ]
    for path in (layout.float_recommend_dlc, layout.int8_recommend_dlc):
        assert inspect_dlc(path)["ops"]["Gather"] == 4


def test_recommend_task_prints_a_table(built):
    _, layout = built
    _, _, student, _ = a_student(layout)
    result = invoke(
        "recommend", "--student", student, "--out", str(layout.out), "--top", "2"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["#", "course", "predicted"]
    assert len(lines) == 3
