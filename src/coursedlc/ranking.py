"""Recommending courses: rank the courses a student has not taken by predicted grade.

Uses the exported models of a build folder: the float ONNX model on the CPU, or
the int8 (QDQ) model on the HTP emulator, as the NPU would compute it. Where the
build has them, the recommendation models (batch = number of courses) score
every course in one inference.

A student the model has not seen (no grade in the data it was trained on) gets
the cold-start ranking: courses by their mean grade in the training split,
which is what the model itself predicts for a student it knows nothing about
apart from the student term.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from coursedlc.dataset import Dataset
from coursedlc.errors import CourseDLCError, StageInputError
from coursedlc.settings import Layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recommendation:
    """One recommended course.

    Attributes:
        course: the course id as in the grade file.
        predicted_grade: the model's grade for the student, in the data's scale;
            for an unknown student, the course's mean training grade.
        source: ``"float"``, ``"int8"`` or ``"cold start"``.
    """

    course: str
    predicted_grade: float
    source: str


def recommend(
    student: str,
    build: str | Path = "build",
    top: int = 5,
    model: Literal["float", "int8"] = "float",
    soc_model: str = "60",
) -> list[Recommendation]:
    """The ``top`` courses ``student`` has not taken, best predicted grade first.

    Args:
        student: a student id as in the grade file (the key's part before the
            last ``-``).
        build: the build folder of a finished ``invoke build``.
        top: how many courses to return at most.
        model: ``"float"`` (onnxruntime, CPU) or ``"int8"`` (QDQ model on the
            HTP emulator).
        soc_model: the Snapdragon SoC the HTP emulator models.

    Returns:
        Up to ``top`` recommendations; empty when the student has taken every
        course. An unknown student gets the cold-start ranking (see the module).

    Raises:
        StageInputError: the build folder lacks the exported models.
        CourseDLCError: ``top`` is not positive or ``model`` is unknown.
    """
    if top < 1:
        raise CourseDLCError(f"--top is {top}; ask for at least one course")
    if model not in ("float", "int8"):
        raise CourseDLCError(f"--model is {model!r}; use float or int8")
    student = str(student)  # ids are strings in the vocabulary, even "100064"
    layout = Layout(Path(build))
    data = Dataset.load(layout)

    if student not in data.students:
        log.warning(
            "student %r has no grades in %s: showing the cold-start ranking "
            "(courses by mean training grade)",
            student,
            layout.vocab,
        )
        return _cold_start(data, top)

    user = data.students.index(student)
    taken = set(data.course[data.user == user].tolist())
    candidates = np.array(
        [c for c in range(len(data.courses)) if c not in taken], dtype=np.int32
    )
    if candidates.size == 0:
        return []
    grades = _score(layout, model, user, candidates, len(data.courses), soc_model)
    order = np.argsort(-grades, kind="stable")[:top]
    return [
        Recommendation(data.courses[candidates[i]], float(grades[i]), model)
        for i in order
    ]


def _score(
    layout: Layout,
    model: str,
    user: int,
    candidates: np.ndarray,
    courses: int,
    soc_model: str,
) -> np.ndarray:
    from coursedlc.export import onnx_predict, with_batch

    float_model, int8_model = layout.onnx_recommend, layout.qdq_recommend
    source = layout.onnx if model == "float" else layout.qdq
    if not source.exists():
        stage = "export" if model == "float" else "quantize"
        raise StageInputError(f"no {source}: run `invoke {stage}` first")

    # One inference over every course, then keep the candidates.
    every = np.arange(courses, dtype=np.int32)
    users = np.full(courses, user, dtype=np.int32)
    with tempfile.TemporaryDirectory(prefix=".recommend-", dir=source.parent) as tmp:
        chosen = float_model if model == "float" else int8_model
        if not chosen.exists():
            chosen = Path(tmp) / "batched.onnx"
            with_batch(source, chosen, courses)
        if model == "float":
            scores = onnx_predict(chosen, users, every)
        else:
            from coursedlc.verify import htp_predict

            scores, _ = htp_predict(
                chosen, users, every, courses, soc_model, layout.logs / "recommend.log"
            )
    return scores[candidates]


def _cold_start(data: Dataset, top: int) -> list[Recommendation]:
    _, courses, grades = data.part("train")
    means = []
    for index, course in enumerate(data.courses):
        taken = grades[courses == index]
        if taken.size:
            means.append((float(taken.mean()), course))
    means.sort(key=lambda item: -item[0])
    return [
        Recommendation(course, grade, "cold start") for grade, course in means[:top]
    ]
