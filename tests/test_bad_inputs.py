"""The corpus of malformed and unusual grade files in tests/data/bad/.

Each file has its expected outcome: an error whose message names where the
problem is (file, key/line/row, value), or a documented acceptance.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from coursedlc import pipeline
from coursedlc.errors import DataError
from coursedlc.settings import Settings

BAD = Path(__file__).parent / "data" / "bad"
LETTERS = {"grade_scale": "letter"}
CUSTOM = {
    "column_student": "id_student",
    "column_semester": "code_presentation",
    "column_course": "code_module",
    "column_grade": "score",
}

# file: (fragments the error must contain, settings); None where accepted.
ERRORS = {
    "latin1.json": (["not UTF-8 text (line 1, byte"], {}),
    "duplicate_keys.json": (["'s1-2023' appears twice"], {}),
    "nan_literal.json": (["key 's0-2023', index 0: course_grade is nan"], {}),
    "infinity_literal.json": (["index 0: course_grade is inf"], {}),
    "boolean_grade.json": (["'s0-2023', index 3: course_grade is true (bool)"], {}),
    "numeric_course_id.json": (["index 3: course_id is 101 (int)"], {}),
    "empty_course_id.json": (['index 3: course_id is "" (str)'], {}),
    "empty_student.json": (["key '-2023': expected '<student>-<semester>'"], {}),
    "no_semester.json": (["key 'anne': expected '<student>-<semester>'"], {}),
    "long_student_id.json": (["student id longer than 200 characters", "..."], {}),
    "one_record.json": (["only 1 enrollment(s)"], {}),
    "string_grade.json": (
        ['index 3: course_grade is "85" (str), expected a number'],
        {},
    ),
    "null_grade.json": (["index 3: course_grade is null (NoneType)"], {}),
    "grade_out_of_range.json": (
        ["course_grade is 105, outside the declared scale"],
        {},
    ),
    "top_level_list.json": (["top level is a JSON list"], {}),
    "truncated.json": (
        ["not valid JSON", "(the file ends early: is it truncated?)"],
        {},
    ),
    "empty.json": (["the file is empty"], {}),
    "value_not_list.json": (["key 's9-2023': value is", "expected a list"], {}),
    "record_not_object.json": (['index 3: record is "C4:70" (str)'], {}),
    "bad_letter.json": (["index 0: course_grade is 'E', not a letter"], LETTERS),
    "letters.json": (['course_grade is "A" (str), expected a number'], {}),
    "table_missing_column.csv": (["no column 'grade'", "columns found: 'student'"], {}),
    "table_bad_grade.csv": (["line 3, column 'grade': grade is 'abc'"], {}),
    "table_empty_grade.csv": (["line 6, column 'grade': grade is empty"], {}),
    "table_latin1.csv": (["not UTF-8 text"], {}),
    "table_missing_grade.parquet": (["row 5, column 'grade': grade is null"], {}),
    "not_a_table.parquet": (["cannot read it as a table"], {}),
    "table_blank_lines.csv": (["line 8, column 'grade': grade is 'abc'"], {}),
    "table_duplicate_column.csv": (["column 'grade' appears more than once"], {}),
    "table_ragged_row.csv": (["line 5 has 5 field(s), the header has 4"], {}),
    "grades.tsv": (["cannot tell the format from the suffix '.tsv'"], {}),
    "table_custom_columns.csv": (
        ["no column 'student', 'semester', 'course', 'grade'"],
        {},
    ),
}


def prepare(path: Path, out: Path, **overrides):
    settings = Settings.load({"data": path, "out": out}, overrides)
    return pipeline.run_stage("prepare", settings)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_names_where_and_what(name, tmp_path):
    fragments, overrides = ERRORS[name]
    with pytest.raises(DataError) as err:
        prepare(BAD / name, tmp_path / "b", **overrides)
    message = str(err.value)
    assert str(BAD / name) in message
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "b" / "model" / "vocab.json").exists()


def vocab(out: Path) -> dict:
    return json.loads((out / "model" / "vocab.json").read_text())


def test_bom_is_accepted(tmp_path):
    assert prepare(BAD / "bom.json", tmp_path)["enrollments"] == 12


def test_hyphenated_student_ids_split_at_the_last_dash(tmp_path):
    prepare(BAD / "hyphenated_student.json", tmp_path)
    assert "anne-marie" in vocab(tmp_path)["students"]


def test_all_grades_equal_is_accepted_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="coursedlc"):
        prepare(BAD / "all_equal.json", tmp_path)
    assert "every grade is 70" in caplog.text


def test_a_course_seen_once_is_kept(tmp_path):
    # Wherever its one enrollment lands (train, validation or test), the course
    # is in the vocabulary; unseen in training, its factors stay near zero and
    # its predictions near the mean.
    summary = prepare(BAD / "course_seen_once.json", tmp_path)
    assert "RARE" in vocab(tmp_path)["courses"] and summary["courses"] == 4


@pytest.mark.parametrize(
    ("name", "overrides", "scale"),
    [
        ("scale_0_20.json", {"grade_max": 20}, {"min": 0, "max": 20}),
        ("scale_1_5.json", {"grade_min": 1, "grade_max": 5}, {"min": 1, "max": 5}),
    ],
)
def test_numeric_scales(name, overrides, scale, tmp_path):
    assert prepare(BAD / name, tmp_path, **overrides)["grade_scale"] == scale
    assert vocab(tmp_path)["grade_scale"] == scale


def test_letter_grades_become_points_stored_with_the_model(tmp_path):
    summary = prepare(BAD / "letters.json", tmp_path, **LETTERS)
    assert summary["grade_scale"]["min"] == 0.0 and summary["grade_scale"]["max"] == 4.0
    assert vocab(tmp_path)["grade_scale"]["letters"]["B+"] == 3.3
    custom = {
        "grade_scale": "letter",
        "letter_points": '{"A": 5, "B+": 4, "A-": 4.5,'
        ' "C": 3, "B": 3.5, "F": 0, "D+": 2, "C-": 2.5, "B-": 3.2, "A+": 5,'
        ' "D": 1, "C+": 3.3}',
    }
    summary = prepare(BAD / "letters.json", tmp_path / "custom", **custom)
    assert summary["grade_scale"]["max"] == 5


@pytest.mark.parametrize(
    "name", ["table.csv", "table.parquet", "table_float_ids.parquet"]
)
def test_tables(name, tmp_path):
    summary = prepare(BAD / name, tmp_path)
    assert summary["enrollments"] == 12 and summary["students"] == 4


def test_table_column_names_are_configurable(tmp_path):
    assert (
        prepare(BAD / "table_custom_columns.csv", tmp_path, **CUSTOM)["enrollments"]
        == 12
    )


def test_unknown_columns_are_ignored_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="coursedlc"):
        prepare(BAD / "table_unknown_column.csv", tmp_path)
    assert "ignoring column(s) 'advisor'" in caplog.text


def test_a_folder_is_not_a_grade_file(tmp_path):
    with pytest.raises(DataError, match=r"cannot tell the format|cannot read it"):
        prepare(BAD, tmp_path)
    folder = tmp_path / "grades.json"
    folder.mkdir()
    with pytest.raises(DataError, match="cannot read it: Is a directory"):
        prepare(folder, tmp_path / "b")


def test_the_corpus_is_complete():
    files = {p.name for p in BAD.iterdir()}
    accepted = {
        "bom.json",
        "hyphenated_student.json",
        "all_equal.json",
        "course_seen_once.json",
        "scale_0_20.json",
        "scale_1_5.json",
        "letters.json",
        "table.csv",
        "table.parquet",
        "table_custom_columns.csv",
        "table_unknown_column.csv",
        "table_float_ids.parquet",
    }
    assert files == set(ERRORS) | accepted
    assert len(files) >= 25
