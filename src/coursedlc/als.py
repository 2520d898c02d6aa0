"""Alternating least squares for the factorization model.

With the course factors and biases held fixed, the loss is a ridge regression
per student: every student's factors and bias have a closed form. The same
holds for courses with the students held fixed. Alternating the two solves is
one sweep; each sweep reads every training grade twice and moves every
parameter to its best value given the other side, so a few sweeps do what
many epochs of gradient steps do.

A side's normal equations are ``A_i x_i = b_i`` with
``A_i = sum_j f_j f_j^T + l2 * I`` over the grades of row ``i`` and
``f_j = [factors_j, 1]``. They are built for all rows at once as sparse-dense
products (a rows-by-columns indicator matrix times the outer products of the
other side's vectors), so one sweep is a handful of tensor operations. A side
with few rows is solved exactly (Cholesky); a side with many rows takes a few
conjugate-gradient steps from the previous sweep's solution, which costs a
fraction of a batched factorisation and lands on the same fixed point.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from coursedlc.dataset import Dataset
from coursedlc.model import FactorizationModel
from coursedlc.settings import Settings

log = logging.getLogger(__name__)

INIT_STD = 0.1  # course factors' start: large enough to leave the all-zero saddle
EXACT_ROWS = 2048  # sides with at most this many rows are solved exactly
MIN_GAIN = 1e-3  # relative validation gain that counts as progress (early stop)
LOOP_GRADES = 64  # grades per row from which a side's products go row by row


@dataclass(frozen=True)
class _Side:
    """The training grades seen from one side: rows are the side's entities."""

    ones: torch.Tensor  # sparse CSR [rows, columns], 1 where a grade exists
    values: torch.Tensor  # sparse CSR [rows, columns], centred grade
    rows: int
    columns: torch.Tensor  # column of each grade, grades ordered by row
    sizes: list[int]  # grades per row
    square_sum: float  # sum of the squared grades

    @classmethod
    def build(
        cls, rows: np.ndarray, columns: np.ndarray, values: np.ndarray, shape: tuple
    ) -> _Side:
        order = np.lexsort((columns, rows))
        crow = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
        crow_t = torch.from_numpy(crow)
        col_t = torch.from_numpy(columns[order].astype(np.int64))
        with warnings.catch_warnings():
            # CSR tensors are marked beta; the products used here are stable.
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support")
            # Checked once here, so a wrong index fails loudly, not in a kernel.
            ones = torch.sparse_csr_tensor(
                crow_t, col_t, torch.ones(len(rows)), shape, check_invariants=True
            )
            vals = torch.sparse_csr_tensor(
                crow_t,
                col_t,
                torch.from_numpy(values[order]),
                shape,
                check_invariants=True,
            )
        sizes = np.diff(crow).tolist()
        square_sum = float(np.square(values, dtype=np.float64).sum())
        return cls(ones, vals, shape[0], col_t, sizes, square_sum)


def _gram(side: _Side, other: torch.Tensor) -> torch.Tensor:
    """``sum_j f_j f_j^T`` per row of ``side``, shape ``[rows, k, k]``."""
    m, k = other.shape
    if len(side.columns) >= LOOP_GRADES * side.rows:
        # Rows with many grades each (courses): one small matrix product per
        # row beats the sparse kernel, which is slow for wide outputs.
        features = other[side.columns]
        gram = torch.empty(side.rows, k, k)
        for row, block in enumerate(torch.split(features, side.sizes)):
            gram[row] = block.T @ block
        return gram
    outer = (other[:, :, None] * other[:, None, :]).reshape(m, k * k)
    return (side.ones @ outer).reshape(side.rows, k, k)


def _conjugate_gradient(
    a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, steps: int
) -> torch.Tensor:
    """A few CG steps on every system ``a[i] x[i] = b[i]`` at once."""
    residual = b - torch.bmm(a, x[:, :, None])[:, :, 0]
    direction = residual.clone()
    rr = (residual * residual).sum(1)
    for _ in range(steps):
        a_dir = torch.bmm(a, direction[:, :, None])[:, :, 0]
        # Converged systems have rr == 0; the clamps keep them at rest, not NaN.
        alpha = rr / (direction * a_dir).sum(1).clamp_min(1e-30)
        x = x + alpha[:, None] * direction
        residual = residual - alpha[:, None] * a_dir
        rr_next = (residual * residual).sum(1)
        direction = residual + (rr_next / rr.clamp_min(1e-30))[:, None] * direction
        rr = rr_next
    return x


def _solve(
    side: _Side, other: torch.Tensor, l2: float, start: torch.Tensor, cg_steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best ``[factors, bias]`` per row given the other side's ``[factors, bias]``.

    Also returns the normal equations solved (``gram`` with ``l2`` on its
    diagonal, and ``rhs``), from which :func:`_squared_error` reads the error.
    """
    dim = other.shape[1] - 1
    features = torch.cat([other[:, :dim], torch.ones(len(other), 1)], 1)
    gram = _gram(side, features)
    gram.diagonal(dim1=1, dim2=2).add_(l2)
    # The other side's bias is part of the prediction, not of the unknowns.
    rhs = side.values @ features - side.ones @ (features * other[:, dim : dim + 1])
    if cg_steps == 0 or side.rows <= EXACT_ROWS:
        factor, _ = torch.linalg.cholesky_ex(gram)
        x = torch.cholesky_solve(rhs[:, :, None], factor)[:, :, 0]
    else:
        x = _conjugate_gradient(gram, rhs, start, cg_steps)
    return x, gram, rhs


def _squared_error(
    side: _Side,
    other: torch.Tensor,
    l2: float,
    solved: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> float:
    """Training sum of squared errors at a solution of :func:`_solve`.

    Read off the normal equations instead of predicting every grade again:
    ``sum (t - f.x)^2 = sum t^2 - 2 x.rhs + x^T G x``, t = grade - other bias.
    """
    x, gram, rhs = solved
    bias = other[side.columns, -1].double()
    targets = side.values.values().double()
    t_squared = side.square_sum - 2 * float(targets @ bias) + float(bias @ bias)
    quadratic = float((x * torch.bmm(gram, x[:, :, None])[:, :, 0]).sum())
    quadratic -= l2 * float((x * x).sum())
    return max(t_squared - 2 * float((x * rhs).sum()) + quadratic, 0.0)


def _predict(
    students: torch.Tensor, courses: torch.Tensor, users: np.ndarray, items: np.ndarray
) -> torch.Tensor:
    """Centred, normalised predictions for index arrays."""
    u = students[torch.from_numpy(users).long()]
    c = courses[torch.from_numpy(items).long()]
    return (u[:, :-1] * c[:, :-1]).sum(1) + u[:, -1] + c[:, -1]


def _rmse(prediction: torch.Tensor, centred: np.ndarray, span: float) -> float:
    if centred.size == 0:
        return float("nan")
    error = prediction.double().numpy() - centred
    return float(np.sqrt(np.mean(error * error))) * span


@dataclass
class _Problem:
    """Training grades in both orientations, and the validation split."""

    users: np.ndarray
    courses: np.ndarray
    mean: float
    span: float
    by_user: _Side
    by_course: _Side
    val_users: np.ndarray
    val_courses: np.ndarray
    val_centred: np.ndarray

    @classmethod
    def build(cls, dataset: Dataset) -> _Problem:
        span = dataset.grade_max - dataset.grade_min
        users, courses, grades = dataset.part("train")
        normalized = (grades.astype(np.float64) - dataset.grade_min) / span
        mean = float(normalized.mean()) if normalized.size else 0.5
        centred = normalized - mean
        values = centred.astype(np.float32)
        n_users, n_courses = len(dataset.students), len(dataset.courses)
        val_users, val_courses, val_grades = dataset.part("validation")
        return cls(
            users,
            courses,
            mean,
            span,
            _Side.build(users, courses, values, (n_users, n_courses)),
            _Side.build(courses, users, values, (n_courses, n_users)),
            val_users,
            val_courses,
            (val_grades.astype(np.float64) - dataset.grade_min) / span - mean,
        )

    def strength_scale(self) -> float:
        """``sqrt(grades per student) + sqrt(grades per course)`` in training.

        Roughly the size of the noise's largest singular value per unit of
        noise: the L2 strength that balances fit and noise grows with it, so
        one setting of ``l2`` suits a 20k and a 2M-grade data set alike.
        """
        n = len(self.users)
        students = max(int(np.count_nonzero(np.bincount(self.users))), 1)
        courses = max(int(np.count_nonzero(np.bincount(self.courses))), 1)
        return max(float(np.sqrt(n / students) + np.sqrt(n / courses)), 1.0)


def _fit_one(
    problem: _Problem,
    settings: Settings,
    l2: float,
    start: tuple[torch.Tensor, torch.Tensor],
) -> tuple[tuple[torch.Tensor, torch.Tensor], float, list[dict[str, float]], int]:
    """Sweeps for one strength, with early stopping.

    Returns the best sweep's ``(students, courses)``, its validation RMSE, the
    history and the best sweep's number.
    """
    p = problem
    user_x, course_x = start

    history: list[dict[str, float]] = []
    best_rmse, best_epoch, progress_epoch = float("inf"), 0, 0
    best = (user_x, course_x)
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        user_x = _solve(p.by_user, course_x, l2, user_x, settings.cg_steps)[0]
        solved = _solve(p.by_course, user_x, l2, course_x, settings.cg_steps)
        course_x = solved[0]
        stepping = time.perf_counter() - started
        sse = _squared_error(p.by_course, user_x, l2, solved)
        val_rmse = _rmse(
            _predict(user_x, course_x, p.val_users, p.val_courses),
            p.val_centred,
            p.span,
        )
        train_rmse = float(np.sqrt(sse / max(len(p.users), 1))) * p.span
        history.append(
            {
                "epoch": epoch,
                "train_rmse": train_rmse,
                "validation_rmse": val_rmse,
                "seconds": time.perf_counter() - started,
                "step_seconds": stepping,
            }
        )
        log.debug(
            "l2 %g sweep %3d  train RMSE %8.4f  validation RMSE %8.4f",
            l2,
            epoch,
            train_rmse,
            val_rmse,
        )
        if not np.isfinite(val_rmse):
            break
        if val_rmse < best_rmse:
            if val_rmse < best_rmse * (1 - MIN_GAIN):
                progress_epoch = epoch
            best_rmse, best_epoch, best = val_rmse, epoch, (user_x, course_x)
        if epoch - progress_epoch >= settings.stop_after:
            break
    return best, best_rmse, history, best_epoch


def fit(
    dataset: Dataset, settings: Settings
) -> tuple[FactorizationModel, dict[str, Any]]:
    """Fit by ALS for each strength in ``settings.l2``; keep the best on validation.

    Strengths are multiples of :meth:`_Problem.strength_scale`. Only the
    middle one starts from small random factors; the others start from their
    neighbour's result, which saves sweeps, and spares a strong penalty the
    long crawl away from the all-zero saddle that a cold start gives it.
    Returns the model and the chosen run's history, best epoch and strength,
    with a summary of every run.
    """
    problem = _Problem.build(dataset)
    scale = problem.strength_scale()
    generator = torch.Generator().manual_seed(settings.seed)
    course_x = torch.zeros(len(dataset.courses), settings.dim + 1)
    course_x[:, :-1] = INIT_STD * torch.randn(
        len(dataset.courses), settings.dim, generator=generator
    )
    start = (torch.zeros(len(dataset.students), settings.dim + 1), course_x)

    # The middle strength first, from scratch; then outwards, each run
    # starting where its neighbour towards the middle ended.
    ordered = sorted(settings.l2)
    middle = len(ordered) // 2
    plan: list[tuple[float, float | None]] = [(ordered[middle], None)]
    plan += [(ordered[i], ordered[i + 1]) for i in range(middle - 1, -1, -1)]
    plan += [(ordered[i], ordered[i - 1]) for i in range(middle + 1, len(ordered))]
    runs = []
    ends: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
    for l2, nearer in plan:
        if nearer is not None:
            start = ends[nearer]
        best, best_rmse, history, best_epoch = _fit_one(
            problem, settings, l2 * scale, start
        )
        ends[l2] = best
        log.info(
            "l2 %g (x %.2f): validation RMSE %.4f at sweep %d of %d",
            l2,
            scale,
            best_rmse,
            best_epoch,
            len(history),
        )
        runs.append((best_rmse, l2, best, history, best_epoch))

    best_rmse, l2, (user_x, course_x), history, best_epoch = min(
        runs, key=lambda run: run[0]
    )
    mean = problem.mean
    model = FactorizationModel(
        len(dataset.students),
        len(dataset.courses),
        settings.dim,
        dataset.grade_min,
        dataset.grade_max,
        global_mean=mean,
    )
    with torch.no_grad():
        model.user_factors.weight.copy_(user_x[:, :-1])
        model.user_bias.weight.copy_(user_x[:, -1:])
        model.course_factors.weight.copy_(course_x[:, :-1])
        model.course_bias.weight.copy_(course_x[:, -1:])
    model.eval()
    search = [
        {
            "l2": run[1],
            "validation_rmse": run[0],
            "best_epoch": run[4],
            "epochs_run": len(run[3]),
            "step_seconds": sum(h["step_seconds"] for h in run[3]),
            "validation_rmse_by_epoch": [h["validation_rmse"] for h in run[3]],
        }
        for run in runs
    ]
    return model, {
        "history": history,
        "best_epoch": best_epoch,
        "l2": l2,
        "l2_scale": scale,
        "l2_search": search,
    }
