"""The prepare stage: reading, validation, duplicates, encoding and split."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from coursedlc import dataset
from coursedlc.errors import DataError
from coursedlc.settings import Layout

GOOD = {"course_id": "CS101", "course_grade": 85}


def prepare(path, tmp_path, grade_min=0.0, grade_max=100.0, seed=0):
    layout = Layout(tmp_path / "build")
    summary = dataset.prepare(path, layout, grade_min, grade_max, seed, 0.1, 0.1)
    return summary, dataset.Dataset.load(layout)


def many(n_students=5, n_courses=4, semester="2023"):
    return {
        f"s{s}-{semester}": [
            {"course_id": f"C{c}", "course_grade": 50 + s + c} for c in range(n_courses)
        ]
        for s in range(n_students)
    }


def test_student_is_everything_before_the_last_dash(write_grades, tmp_path):
    grades = many()
    grades["anne-marie-2023"] = [GOOD, {"course_id": "MA1", "course_grade": 70}]
    _, ds = prepare(write_grades(grades), tmp_path)
    assert "anne-marie" in ds.students
    assert "anne" not in ds.students


# Each bad input with the fragments its message must contain: the key, the
# index and the offending value.
BAD_RECORDS = [
    ({"course_grade": 80}, ["'s-2023'", "index 1", "course_id is missing"]),
    ({"course_id": 42, "course_grade": 80}, ["'s-2023'", "index 1", "42 (int)"]),
    ({"course_id": "", "course_grade": 80}, ["index 1", '"" (str)', "non-empty"]),
    ({"course_id": "X"}, ["'s-2023'", "index 1", "course_grade is missing"]),
    ({"course_id": "X", "course_grade": None}, ["index 1", "null (NoneType)"]),
    ({"course_id": "X", "course_grade": True}, ["index 1", "true (bool)"]),
    ({"course_id": "X", "course_grade": "85"}, ["index 1", '"85" (str)']),
    ({"course_id": "X", "course_grade": 120}, ["index 1", "120", "[0, 100]"]),
    ({"course_id": "X", "course_grade": -1}, ["index 1", "-1", "outside"]),
    ("CS101", ["index 1", '"CS101" (str)', "expected an object"]),
]


@pytest.mark.parametrize(("record", "fragments"), BAD_RECORDS)
def test_bad_record_is_named_by_file_key_index_and_value(
    write_grades, tmp_path, record, fragments
):
    path = write_grades({"s-2023": [GOOD, record]})
    with pytest.raises(DataError) as err:
        prepare(path, tmp_path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_grade_literals_are_rejected(write_grades, tmp_path, literal):
    text = '{"s-2023": [{"course_id": "X", "course_grade": ' + literal + "}]}"
    with pytest.raises(
        DataError, match=r"'s-2023', index 0: course_grade is -?(inf|nan)"
    ):
        prepare(write_grades(text), tmp_path)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "the file is empty"),
        ("   \n", "the file is empty"),
        ('{"s-2023": [{"course_id": "X", "course_gr', "line 1, column"),
        ("[1, 2]", "top level is a JSON list"),
        ('"grades"', "top level is a JSON str"),
        ('{"s-2023": {"course_id": "X", "course_grade": 1}}', "expected a list"),
        ('{"s-2023": null}', "value is null"),
        ('{"s2023": []}', "'s2023'"),
        ('{"-2023": []}', "'<student>-<semester>'"),
        ('{"s-": []}', "'s-'"),
        ('{"s-2023": [], "s-2023": []}', "'s-2023' appears twice"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_bad_file_names_file_and_problem(write_grades, tmp_path, content, fragment):
    path = write_grades(content)
    with pytest.raises(DataError) as err:
        prepare(path, tmp_path)
    assert str(path) in str(err.value)
    assert fragment in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        prepare(tmp_path / "absent.json", tmp_path)


def test_every_bad_record_is_counted_and_the_first_ones_listed(write_grades, tmp_path):
    grades = {
        f"s{i}-2023": [{"course_id": "X", "course_grade": 200}] for i in range(30)
    }
    with pytest.raises(DataError) as err:
        prepare(write_grades(grades), tmp_path)
    assert "30 invalid record(s)" in str(err.value)
    assert "and 10 more" in str(err.value)


def test_failed_prepare_leaves_no_dataset(write_grades, tmp_path):
    with pytest.raises(DataError):
        prepare(
            write_grades({"s-2023": [{"course_id": 1, "course_grade": 1}]}), tmp_path
        )
    assert not (tmp_path / "build" / "model" / "vocab.json").exists()
    assert not (tmp_path / "build" / "data" / "split.npy").exists()


def test_declared_scale_is_validated_and_stored(write_grades, tmp_path):
    grades = many()
    for items in grades.values():
        for item in items:
            item["course_grade"] = 1 + item["course_grade"] % 5
    path = write_grades(grades)
    summary, ds = prepare(path, tmp_path, grade_min=1, grade_max=5)
    assert summary["grade_scale"] == {"min": 1, "max": 5}
    assert (ds.grade_min, ds.grade_max) == (1, 5)
    vocab = json.loads((tmp_path / "build" / "model" / "vocab.json").read_text())
    assert vocab["grade_scale"] == {"min": 1, "max": 5}

    grades["s0-2023"][0]["course_grade"] = 6
    with pytest.raises(DataError, match=r"6, outside the declared scale \[1, 5\]"):
        prepare(write_grades(grades), tmp_path, grade_min=1, grade_max=5)


def test_narrow_grades_on_the_default_scale_warn(write_grades, tmp_path, caplog):
    grades = many()
    for items in grades.values():
        for item in items:
            item["course_grade"] = 2 + item["course_grade"] % 3
    with caplog.at_level(logging.WARNING, logger="coursedlc"):
        prepare(write_grades(grades), tmp_path)
    assert "--grade-min/--grade-max" in caplog.text


def test_repeated_enrollment_keeps_latest_semester(write_grades, tmp_path, caplog):
    grades = many()
    grades["s0-2024"] = [{"course_id": "C0", "course_grade": 99}]
    grades["s0-2022"] = [{"course_id": "C0", "course_grade": 11}]
    with caplog.at_level(logging.WARNING, logger="coursedlc"):
        summary, ds = prepare(write_grades(grades), tmp_path)
    assert summary["duplicates_replaced"] == 2
    assert "kept the latest semester" in caplog.text
    mask = (ds.user == ds.students.index("s0")) & (ds.course == ds.courses.index("C0"))
    assert ds.grade[mask].tolist() == [99]


def test_repeat_within_one_semester_keeps_the_later_record(write_grades, tmp_path):
    grades = many()
    grades["s0-2023"].append({"course_id": "C0", "course_grade": 77})
    _, ds = prepare(write_grades(grades), tmp_path)
    mask = (ds.user == ds.students.index("s0")) & (ds.course == ds.courses.index("C0"))
    assert ds.grade[mask].tolist() == [77]


def test_split_is_seeded_and_independent_of_file_order(write_grades, tmp_path):
    grades = many(20, 5)
    reversed_grades = dict(reversed(list(grades.items())))
    _, a = prepare(write_grades(grades, "a.json"), tmp_path / "a", seed=1)
    _, b = prepare(write_grades(reversed_grades, "b.json"), tmp_path / "b", seed=1)
    _, c = prepare(write_grades(grades, "c.json"), tmp_path / "c", seed=2)
    assert np.array_equal(a.split, b.split) and np.array_equal(a.user, b.user)
    assert not np.array_equal(a.split, c.split)
    counts = np.bincount(a.split, minlength=3).tolist()
    assert counts == [80, 10, 10]


def test_too_few_enrollments(write_grades, tmp_path):
    with pytest.raises(DataError, match="only 1 enrollment"):
        prepare(write_grades({"s-2023": [GOOD]}), tmp_path)


def test_saved_arrays_load_without_pickle(write_grades, tmp_path):
    prepare(write_grades(many()), tmp_path)
    for name in ("user", "course", "grade", "split"):
        array = np.load(tmp_path / "build" / "data" / f"{name}.npy", allow_pickle=False)
        assert array.dtype != object
