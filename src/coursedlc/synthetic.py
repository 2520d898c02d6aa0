"""Grade data with a known structure and a known noise level.

A grade is ``mean + student bias + course bias + <u_s, v_c> + noise``, with
rank-``rank`` factors and Gaussian noise of standard deviation ``noise``. A
model that recovers the structure reaches a test RMSE near ``noise``; how near
depends on how many grades each student has.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def generate(
    students: int = 1000,
    courses: int = 40,
    per_student: int = 30,
    rank: int = 3,
    noise: float = 5.0,
    mean: float = 65.0,
    seed: int = 0,
    grade_min: float = 0.0,
    grade_max: float = 100.0,
) -> dict[str, Any]:
    """Return grades in the coursedlc input format.

    Student ids contain a ``-`` (``stu-00042``) so the file also exercises the
    last-dash rule of the key. Grades are clipped to the scale; with the
    defaults fewer than 1% are.
    """
    if per_student > courses:
        raise ValueError("per_student cannot exceed courses")
    rng = np.random.default_rng(seed)
    span = grade_max - grade_min
    student_bias = rng.normal(0, 0.08 * span, students)
    course_bias = rng.normal(0, 0.06 * span, courses)
    # Factor scale chosen so the interaction term has a standard deviation of
    # about 8% of the scale, comparable to the biases.
    scale = np.sqrt(0.08 * span / np.sqrt(rank))
    user_factors = rng.normal(0, scale, (students, rank))
    course_factors = rng.normal(0, scale, (courses, rank))

    out: dict[str, Any] = {}
    per_semester = 6
    for s in range(students):
        taken = rng.choice(courses, size=per_student, replace=False)
        grades = (
            mean
            + student_bias[s]
            + course_bias[taken]
            + course_factors[taken] @ user_factors[s]
            + rng.normal(0, noise, per_student)
        )
        grades = np.clip(grades, grade_min, grade_max)
        for j, (course, grade) in enumerate(zip(taken, grades, strict=True)):
            key = f"stu-{s:05d}-{2020 + j // per_semester}"
            out.setdefault(key, []).append(
                {"course_id": f"C{course:03d}", "course_grade": round(float(grade), 2)}
            )
    return out
