"""Fuzzing the grade-file reader and validator: our error or a dataset, nothing else."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursedlc import dataset
from coursedlc.errors import DataError
from coursedlc.scale import GradeScale

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
RECORD = st.dictionaries(
    st.sampled_from(["course_id", "course_grade", "extra"]),
    JSON | st.floats(0, 100) | st.text(min_size=1, max_size=6),
    max_size=3,
)
GRADE_FILE = st.dictionaries(
    st.text(max_size=10).map(lambda s: s + "-2023") | st.text(max_size=10),
    st.lists(RECORD, max_size=5) | JSON,
    max_size=6,
)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def run(tmp_path, text: str) -> None:
    path = tmp_path / "fuzz.json"
    path.write_text(text, encoding="utf-8")
    try:
        raw = dataset.read_grade_file(path)
        records = dataset.validate_records(raw, path, GradeScale(0.0, 100.0))
        kept, _ = dataset.deduplicate(records)
        ds = dataset.encode_and_split(kept, 0.0, 100.0, 0, 0.1, 0.1, path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    # Whatever was accepted is a consistent dataset.
    assert len(ds.user) == len(ds.course) == len(ds.grade) == len(ds.split)
    assert all(math.isfinite(g) and 0 <= g <= 100 for g in ds.grade.tolist())


@FUZZ
@given(value=JSON)
def test_any_json_value(tmp_path, value):
    run(tmp_path, json.dumps(value))


@FUZZ
@given(value=GRADE_FILE)
def test_grade_shaped_files(tmp_path, value):
    run(tmp_path, json.dumps(value))


@FUZZ
@given(text=st.text(max_size=60))
def test_any_text(tmp_path, text):
    run(tmp_path, text)
