"""The prepare stage: read a grade file, validate every record, encode, split.

Input format::

    {"<student>-<semester>": [{"course_id": "CS101", "course_grade": 85}, ...]}

The student id is everything before the last ``-`` of the key and the semester
everything after it, so ``anne-marie-2023`` is student ``anne-marie``.

When the same student has the same course more than once, the record from the
latest semester wins (semesters compare as strings, which orders year-first
labels such as ``2013B`` < ``2014J`` correctly); within one semester the later
record in the file wins. Every replaced record is counted and logged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coursedlc.errors import DataError, StageInputError
from coursedlc.files import atomic_path, read_json, sha256, write_json
from coursedlc.scale import GradeScale
from coursedlc.settings import Layout
from coursedlc.tables import SUFFIXES, Columns, read_table, read_utf8, table_rows

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MAX_REPORTED = 20  # errors listed in one message; the total is always given
MIN_ENROLLMENTS = 10  # fewer cannot fill a train, validation and test split
MAX_ID = 200  # longer ids are export accidents (a whole row in one cell)


@dataclass(frozen=True)
class Record:
    """One valid grade as read from the file."""

    student: str
    semester: str
    course: str
    grade: float
    order: int


@dataclass
class Dataset:
    """Encoded enrollments with their vocabularies and split."""

    students: list[str]
    courses: list[str]
    grade_min: float
    grade_max: float
    user: np.ndarray  # int32 index into students
    course: np.ndarray  # int32 index into courses
    grade: np.ndarray  # float32, in the declared scale
    split: np.ndarray  # int8 index into SPLITS

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Users, courses and grades of one split."""
        mask = self.split == SPLITS.index(name)
        return self.user[mask], self.course[mask], self.grade[mask]

    def save(self, layout: Layout, scale: GradeScale | None = None) -> None:
        """Write the arrays (plain .npy, no pickle) and the vocabulary JSON."""
        for name in ("user", "course", "grade", "split"):
            target = layout.data_dir / f"{name}.npy"
            with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                np.save(handle, getattr(self, name), allow_pickle=False)
        write_json(
            layout.vocab,
            {
                "students": self.students,
                "courses": self.courses,
                "grade_scale": (
                    scale or GradeScale(self.grade_min, self.grade_max)
                ).describe(),
            },
        )

    @classmethod
    def load(cls, layout: Layout) -> Dataset:
        """Read what :meth:`save` wrote.

        Raises:
            StageInputError: the prepare stage has not run in this build folder.
        """
        if not layout.vocab.exists() or not (layout.data_dir / "split.npy").exists():
            raise StageInputError(
                f"no prepared dataset in {layout.out}: run `invoke prepare` first"
            )
        vocab = read_json(layout.vocab)
        arrays = {
            name: np.load(layout.data_dir / f"{name}.npy", allow_pickle=False)
            for name in ("user", "course", "grade", "split")
        }
        return cls(
            students=vocab["students"],
            courses=vocab["courses"],
            grade_min=vocab["grade_scale"]["min"],
            grade_max=vocab["grade_scale"]["max"],
            **arrays,
        )


def read_grade_file(path: Path) -> dict[str, Any]:
    """Parse the grade file into its top-level object.

    Raises:
        DataError: the file is missing, empty, not JSON, truncated, holds
            duplicate keys or is not a JSON object.
    """
    path = Path(path)
    text = read_utf8(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected a JSON object")
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        ends_early = exc.pos >= len(text.rstrip())
        raise DataError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}"
            + (" (the file ends early: is it truncated?)" if ends_early else "")
        ) from None
    except _DuplicateKey as exc:
        raise DataError(
            f"{path}: key {exc.args[0]!r} appears twice in one object; "
            "merge the records under one key"
        ) from None
    if not isinstance(parsed, dict):
        raise DataError(
            f"{path}: top level is a JSON {type(parsed).__name__}, expected an "
            'object {"<student>-<semester>": [records]}'
        )
    return parsed


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def validate_records(
    raw: dict[str, Any], source: Path, scale: GradeScale
) -> list[Record]:
    """Check every record; return them all or raise one error listing problems.

    Raises:
        DataError: naming the file, key, index and value of each bad record.
    """
    problems: list[str] = []
    records: list[Record] = []
    for key, items in raw.items():
        where = f"{source}: key {_clip(key)!r}"
        student, sep, semester = key.rpartition("-")
        if not sep or not student or not semester:
            problems.append(
                f"{where}: expected '<student>-<semester>' (the part after the "
                "last '-' is the semester)"
            )
            continue
        if len(student) > MAX_ID:
            problems.append(f"{where}: student id longer than {MAX_ID} characters")
            continue
        if not isinstance(items, list):
            problems.append(
                f"{where}: value is {_show(items)}, expected a list of records"
            )
            continue
        for index, item in enumerate(items):
            course, points, problem = _check_item(item, scale)
            if problem:
                problems.append(f"{where}, index {index}: {problem}")
                continue
            records.append(Record(student, semester, course, points, len(records)))
    _raise_problems(problems, source)
    return records


def _raise_problems(problems: list[str], source: Path) -> None:
    if not problems:
        return
    shown = "\n  ".join(problems[:MAX_REPORTED])
    more = len(problems) - MAX_REPORTED
    tail = f"\n  ... and {more} more" if more > 0 else ""
    hint = "Fix the records"
    if any("outside the declared scale" in p for p in problems):
        hint += ", or declare the data's grade scale with --grade-min/--grade-max"
    if any(
        re.search(r'is "[A-F][+-]?" \(str\), expected a number', p) for p in problems
    ):
        hint += "; for letter grades pass --grade-scale letter"
    raise DataError(
        f"{len(problems)} invalid record(s) in {source}:\n  {shown}{tail}\n{hint}."
    )


def _check_item(item: Any, scale: GradeScale) -> tuple[str, float, str | None]:
    if not isinstance(item, dict):
        return "", 0.0, f"record is {_show(item)}, expected an object"
    if "course_id" not in item:
        return "", 0.0, f"course_id is missing (record {_show(item)})"
    course = item["course_id"]
    if not isinstance(course, str) or not course.strip():
        return "", 0.0, f"course_id is {_show(course)}, expected a non-empty string"
    if len(course) > MAX_ID:
        return "", 0.0, f"course_id is longer than {MAX_ID} characters"
    course = course.strip()  # as table cells are: " CS101" is CS101
    if "course_grade" not in item:
        return "", 0.0, f"course_grade is missing (course_id {course!r})"
    points, problem = scale.convert(item["course_grade"])
    if problem:
        return "", 0.0, f"course_grade {problem}"
    assert points is not None
    return course, points, None


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def deduplicate(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Apply the duplicate rule; return (kept, replaced)."""
    kept: dict[tuple[str, str], Record] = {}
    replaced: list[Record] = []
    for rec in sorted(records, key=lambda r: (r.semester, r.order)):
        pair = (rec.student, rec.course)
        if pair in kept:
            replaced.append(kept[pair])
        kept[pair] = rec
    return list(kept.values()), replaced


def encode_and_split(
    records: list[Record],
    grade_min: float,
    grade_max: float,
    settings_seed: int,
    validation_fraction: float,
    test_fraction: float,
    source: Path | str = "the grade file",
) -> Dataset:
    """Index students and courses (sorted ids) and split enrollments by seed."""
    if len(records) < MIN_ENROLLMENTS:
        raise DataError(
            f"{source}: only {len(records)} enrollment(s) after validation; at "
            f"least {MIN_ENROLLMENTS} are needed to fill train, validation and test"
        )
    students = sorted({r.student for r in records})
    courses = sorted({r.course for r in records})
    s_index = {s: i for i, s in enumerate(students)}
    c_index = {c: i for i, c in enumerate(courses)}

    # Sorting first makes the split independent of the order of the file.
    ordered = sorted(records, key=lambda r: (s_index[r.student], c_index[r.course]))
    user = np.array([s_index[r.student] for r in ordered], dtype=np.int32)
    course = np.array([c_index[r.course] for r in ordered], dtype=np.int32)
    grade = np.array([r.grade for r in ordered], dtype=np.float32)

    n = len(ordered)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * validation_fraction))
    order = np.random.default_rng(settings_seed).permutation(n)
    split = np.zeros(n, dtype=np.int8)
    split[order[:n_test]] = SPLITS.index("test")
    split[order[n_test : n_test + n_val]] = SPLITS.index("validation")
    return Dataset(students, courses, grade_min, grade_max, user, course, grade, split)


def summarize(
    dataset: Dataset, source: Path, keys: int, replaced: int
) -> dict[str, Any]:
    """Facts about the data that the report shows."""
    train_users = set(dataset.part("train")[0].tolist())
    test_users = dataset.part("test")[0]
    return {
        "source": str(source),
        "source_sha256": sha256(source),
        "keys": keys,
        "students": len(dataset.students),
        "courses": len(dataset.courses),
        "enrollments": int(dataset.grade.size),
        "duplicates_replaced": replaced,
        "grade_scale": {"min": dataset.grade_min, "max": dataset.grade_max},
        "grade_mean": float(dataset.grade.mean()),
        "grade_std": float(dataset.grade.std()),
        "grade_observed": {
            "min": float(dataset.grade.min()),
            "max": float(dataset.grade.max()),
        },
        "split": {
            name: int((dataset.split == i).sum()) for i, name in enumerate(SPLITS)
        },
        "test_pairs_with_unseen_student": int(
            sum(1 for u in test_users.tolist() if u not in train_users)
        ),
    }


def prepare(
    data: Path,
    layout: Layout,
    grade_min: float,
    grade_max: float,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    *,
    letters: dict[str, float] | None = None,
    columns: Columns | None = None,
) -> dict[str, Any]:
    """Run the prepare stage; return the data summary.

    ``data`` is a JSON grade file, or a CSV or Parquet table (by its suffix)
    with the given ``columns``. With ``letters``, grades are letters mapped to
    points and the scale is that of the points.
    """
    data = Path(data)
    if data.suffix.lower() not in (".json", *SUFFIXES):
        raise DataError(
            f"{data}: cannot tell the format from the suffix {data.suffix!r}; "
            "coursedlc reads .json, .csv and .parquet files"
        )
    scale = GradeScale.letter(letters) if letters else GradeScale(grade_min, grade_max)
    if data.suffix.lower() in SUFFIXES:
        columns = columns or Columns()
        table = read_table(data, columns)
        rows, problems = table_rows(data, table, columns, scale)
        _raise_problems(problems, data)
        records = [Record(*row, order) for order, row in enumerate(rows)]
        keys = len({(r.student, r.semester) for r in records})
    else:
        raw = read_grade_file(data)
        records = validate_records(raw, data, scale)
        keys = len(raw)
    kept, replaced = deduplicate(records)
    if replaced:
        first = replaced[0]
        log.warning(
            "%d repeated (student, course) enrollment(s): kept the latest semester's "
            "grade (first: student %r, course %r, semester %s replaced)",
            len(replaced),
            first.student,
            first.course,
            first.semester,
        )
    dataset = encode_and_split(
        kept,
        scale.low,
        scale.high,
        seed,
        validation_fraction,
        test_fraction,
        data,
    )
    _warn_narrow_scale(dataset)
    if float(dataset.grade.min()) == float(dataset.grade.max()):
        log.warning(
            "%s: every grade is %g; the model can only learn that constant",
            data,
            dataset.grade[0],
        )

    dataset.save(layout, scale)
    summary = summarize(dataset, data, keys, len(replaced))
    summary["grade_scale"] = scale.describe()
    write_json(layout.summary, summary)
    log.info(
        "prepare: %d enrollments, %d students, %d courses (train %d, validation %d, "
        "test %d)",
        summary["enrollments"],
        summary["students"],
        summary["courses"],
        *summary["split"].values(),
    )
    return summary


def _warn_narrow_scale(dataset: Dataset) -> None:
    span = dataset.grade_max - dataset.grade_min
    observed = float(dataset.grade.max() - dataset.grade.min())
    if observed < 0.2 * span:
        log.warning(
            "grades span only %.4g-%.4g of the declared scale %g-%g; if the data "
            "uses another scale, pass --grade-min/--grade-max",
            dataset.grade.min(),
            dataset.grade.max(),
            dataset.grade_min,
            dataset.grade_max,
        )
