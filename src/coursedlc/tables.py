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


def read_table(path: Path, columns: Columns) -> Any:
    """The table as a pandas DataFrame (CSV cells as text, as written).

    Raises:
        DataError: unreadable, not UTF-8, empty, or a column is missing.
    """
    import pandas as pd

    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding="utf-8"
            )
        else:
            frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; pass --data PATH") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}); re-export the file as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a header line") from None
    except Exception as exc:  # pandas and pyarrow raise many unrelated types
        raise DataError(f"{path}: cannot read it as a table: {exc}") from None

    wanted = [columns.student, columns.semester, columns.course, columns.grade]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(map(repr, missing))} (columns found: "
            f"{', '.join(map(repr, map(str, frame.columns)))}); name them with "
            "--column-student/--column-semester/--column-course/--column-grade"
        )
    extra = [str(c) for c in frame.columns if c not in wanted]
    if extra:
        log.warning("%s: ignoring column(s) %s", path, ", ".join(map(repr, extra)))
    return frame[wanted]


def table_rows(
    path: Path, frame: Any, columns: Columns, scale: GradeScale
) -> tuple[list[tuple[str, str, str, float]], list[str]]:
    """Valid rows as (student, semester, course, points), and the problems."""
    text = path.suffix.lower() == ".csv"
    rows, problems = [], []
    names = (columns.student, columns.semester, columns.course)
    for index, values in enumerate(frame.itertuples(index=False, name=None)):
        where = f"{path}: line {index + 2}" if text else f"{path}: row {index}"
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
                rows.append((ids[0], ids[1], ids[2], points))
    return rows, problems


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones; missing values as None."""
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _identifier(value: Any) -> tuple[str, str | None]:
    # Typed tables often hold integer ids; they are ids, written as text.
    value = _plain(value)
    if isinstance(value, bool) or value is None:
        return "", f"is {value!r}, expected an id"
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    return "", f"is {value!r}, expected a non-empty id"
