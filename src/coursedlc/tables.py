"""Long-form grade tables: CSV or Parquet, one enrollment per row.

Registrar exports are tables with a student, a semester, a course and a grade
column (names configurable). Rows get the same checks as the JSON records, and
errors name the file, the line (CSV, counting the header as line 1) or row
(Parquet, from 0), the column and the value.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursedlc.errors import DataError
from coursedlc.scale import GradeScale

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Columns:
    """Which column holds what."""

    student: str = "student"
    semester: str = "semester"
    course: str = "course"
    grade: str = "grade"


def read_utf8(path: Path) -> str:
    """The text of a grade file, with a byte-order mark accepted.

    Raises:
        DataError: missing, a folder, unreadable, or not UTF-8 (naming the
            line and byte of the first bad byte).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data PATH") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        # utf-8-sig: a byte-order mark, as some Windows tools write, is fine.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not UTF-8 text (line {line}, byte {exc.start} of the file: "
            f"{data[exc.start : exc.start + 1]!r}); re-export the file as UTF-8"
        ) from None


def read_table(path: Path, columns: Columns) -> list[tuple[str, tuple[Any, ...]]]:
    """The rows of a CSV or Parquet table as (where, (student, semester,
    course, grade)), where naming the CSV line or the Parquet row.

    Raises:
        DataError: unreadable, not UTF-8, empty, or a column missing or doubled.
    """
    wanted = [columns.student, columns.semester, columns.course, columns.grade]
    if path.suffix.lower() == ".csv":
        header, rows = _csv_rows(path)
    else:
        header, rows = _parquet_rows(path)
    doubled = sorted({c for c in header if header.count(c) > 1})
    if doubled:
        raise DataError(
            f"{path}: column {', '.join(map(repr, doubled))} appears more than "
            "once in the header; keep one"
        )
    missing = [c for c in wanted if c not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns found: "
            f"{', '.join(map(repr, header))}); name them with "
            "--column-student/--column-semester/--column-course/--column-grade"
        )
    extra = [c for c in header if c not in wanted]
    if extra:
        log.warning("%s: ignoring column(s) %s", path, ", ".join(map(repr, extra)))
    at = [header.index(c) for c in wanted]
    picked = []
    for where, values in rows:
        if len(values) != len(header):
            raise DataError(
                f"{path}: {where} has {len(values)} field(s), the header has "
                f"{len(header)}; check the quoting and separators of that line"
            )
        picked.append((f"{path}: {where}", tuple(values[i] for i in at)))
    return picked


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    import csv
    import io

    reader = csv.reader(io.StringIO(read_utf8(path), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        # line_num is the file line where a row ends, so blank lines and cells
        # spanning lines do not shift what the errors say.
        rows = [(f"line {reader.line_num}", row) for row in reader if row]
    except StopIteration:
        raise DataError(f"{path}: the file is empty; expected a header line") from None
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: {exc}") from None
    return header, rows


def _parquet_rows(path: Path) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: no such file; pass --data PATH")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many unrelated types
        raise DataError(f"{path}: cannot read it as a table: {exc}") from None
    header = [str(c) for c in frame.columns]
    return header, [
        (f"row {i}", list(values))
        for i, values in enumerate(frame.itertuples(index=False, name=None))
    ]


def table_rows(
    path: Path,
    rows: list[tuple[str, tuple[Any, ...]]],
    columns: Columns,
    scale: GradeScale,
) -> tuple[list[tuple[str, str, str, float]], list[str]]:
    """Valid rows as (student, semester, course, points), and the problems."""
    text = path.suffix.lower() == ".csv"
    valid, problems = [], []
    names = (columns.student, columns.semester, columns.course)
    for where, values in rows:
        ids = []
        for name, value in zip(names, values[:3], strict=True):
            as_id, problem = _identifier(value)
            if problem:
                problems.append(f"{where}, column {name!r}: {problem}")
                break
            ids.append(as_id)
        else:
            points, problem = scale.convert(_plain(values[3]), text=text)
            if problem:
                problems.append(f"{where}, column {columns.grade!r}: grade {problem}")
            else:
                assert points is not None
                valid.append((ids[0], ids[1], ids[2], points))
    return valid, problems


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones; missing values as None."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _identifier(value: Any) -> tuple[str, str | None]:
    # Typed tables often hold integer ids (as floats, once a column had a
    # missing value); they are ids, written as text.
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value is None:
        return "", f"is {value!r}, expected an id"
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    if isinstance(value, str):
        return "", "is empty, expected an id"
    return "", f"is {value!r}, expected an integer or text id"
