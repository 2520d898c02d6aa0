"""Grade scales: numeric ranges (0-100, 0-20, 1-5, ...) and letter grades.

A grade is checked and turned into a number here, wherever it came from (a
JSON number, a CSV cell, a Parquet value). Letter grades become points by a
mapping, configurable, with a US 4.0 default; the model learns and predicts in
those points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# US 4.0 points; A+ counts as 4.0, as most US registrars cap it.
US_LETTERS = {
    "A+": 4.0,
    "A": 4.0,
    "A-": 3.7,
    "B+": 3.3,
    "B": 3.0,
    "B-": 2.7,
    "C+": 2.3,
    "C": 2.0,
    "C-": 1.7,
    "D+": 1.3,
    "D": 1.0,
    "D-": 0.7,
    "F": 0.0,
}


@dataclass(frozen=True)
class GradeScale:
    """The declared scale: numbers in [low, high], or letters mapped to points."""

    low: float
    high: float
    letters: dict[str, float] | None = field(default=None)

    @classmethod
    def letter(cls, mapping: dict[str, float]) -> GradeScale:
        """A letter scale; its range is that of the points it maps to."""
        return cls(min(mapping.values()), max(mapping.values()), dict(mapping))

    def describe(self) -> dict[str, Any]:
        """As stored with the model (vocab.json) and shown in the report."""
        found: dict[str, Any] = {"min": self.low, "max": self.high}
        if self.letters:
            found["letters"] = self.letters
        return found

    def convert(
        self, value: Any, text: bool = False
    ) -> tuple[float | None, str | None]:
        """(points, None) for a valid grade, else (None, what is wrong with it).

        ``text`` says the value comes from a text cell (CSV), where numbers are
        written as strings.
        """
        if isinstance(value, str):
            stripped = value.strip()
            if self.letters is not None:
                if stripped in self.letters:
                    return self.letters[stripped], None
                return None, (
                    f"is {value!r}, not a letter of the scale "
                    f"({', '.join(self.letters)})"
                )
            if not text:
                return None, f"is {_show(value)}, expected a number"
            if not stripped:
                return None, "is empty, expected a number"
            try:
                value = float(stripped)
            except ValueError:
                return None, f"is {value!r}, expected a number"
        elif self.letters is not None:
            return None, f"is {_show(value)}, expected a letter grade"

        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"is {_show(value)}, expected a number"
        if not math.isfinite(value):
            return None, f"is {value!r}, expected a finite number"
        if not self.low <= value <= self.high:
            return None, (
                f"is {value!r}, outside the declared scale "
                f"[{self.low:g}, {self.high:g}]"
            )
        return float(value), None


def _show(value: Any) -> str:
    import json

    try:
        text = repr(value) if isinstance(value, float) else json.dumps(value)
    except TypeError:
        text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
