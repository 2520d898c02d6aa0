"""The train stage: fit a grade model, evaluate it, save it.

The factorization model is fitted by alternating least squares (``als.py``).
The concat-linear model, which has no closed form, is fitted with Adam on
vectorised mini-batches: slices of a shuffled index tensor, so one step costs a
few tensor ops whatever the batch size and nothing is collated sample by sample.
"""

from __future__ import annotations

import copy
import io
import logging
import time
from typing import Any

import numpy as np
import torch

from coursedlc import als
from coursedlc.dataset import Dataset
from coursedlc.files import atomic_path, write_json
from coursedlc.model import GradeModel, build_model
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

EVAL_CHUNK = 1 << 16  # rows per forward pass when scoring a whole split


def rmse(
    model: GradeModel, users: np.ndarray, courses: np.ndarray, grades: np.ndarray
) -> float:
    """Root mean squared error in grade units over a split."""
    if grades.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((predict(model, users, courses) - grades) ** 2)))


@torch.no_grad()
def predict(model: GradeModel, users: np.ndarray, courses: np.ndarray) -> np.ndarray:
    """Predicted grades, shape ``[n]``, float64."""
    model.eval()
    out = []
    for start in range(0, len(users), EVAL_CHUNK):
        u = torch.from_numpy(users[start : start + EVAL_CHUNK])
        c = torch.from_numpy(courses[start : start + EVAL_CHUNK])
        out.append(model(u, c)[:, 0].double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def fit(dataset: Dataset, settings: Settings) -> tuple[GradeModel, dict[str, Any]]:
    """Train with the configured optimizer and early stopping on validation RMSE.

    Returns the model at its best validation epoch and the training metrics.
    """
    if settings.solver == "als":
        return als.fit(dataset, settings)
    return fit_adam(dataset, settings)


def fit_adam(dataset: Dataset, settings: Settings) -> tuple[GradeModel, dict[str, Any]]:
    """Train with Adam on mini-batches and early stopping on validation RMSE."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    span = dataset.grade_max - dataset.grade_min

    users, courses, grades = dataset.part("train")
    val = dataset.part("validation")
    u_t, c_t = torch.from_numpy(users), torch.from_numpy(courses)
    y_t = torch.from_numpy((grades - dataset.grade_min) / span).float()

    model = build_model(
        settings.model,
        len(dataset.students),
        len(dataset.courses),
        settings.dim,
        dataset.grade_min,
        dataset.grade_max,
        global_mean=float(y_t.mean()),
    )
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )

    history: list[dict[str, float]] = []
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    for epoch in range(1, settings.epochs + 1):
        started = time.perf_counter()
        train_rmse = _epoch(model, optimizer, u_t, c_t, y_t, settings, generator)
        stepping = time.perf_counter() - started
        val_rmse = rmse(model, *val)
        history.append(
            {
                "epoch": epoch,
                "train_rmse": train_rmse * span,
                "validation_rmse": val_rmse,
                "seconds": time.perf_counter() - started,
                "step_seconds": stepping,
            }
        )
        log.info(
            "epoch %3d  train RMSE %8.4f  validation RMSE %8.4f  %.2fs",
            epoch,
            train_rmse * span,
            val_rmse,
            history[-1]["seconds"],
        )
        if val_rmse < best[0]:
            best = (val_rmse, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= settings.stop_after:
            log.info("early stop: no improvement for %d epochs", settings.stop_after)
            break

    model.load_state_dict(best[2])
    model.eval()
    return model, {"history": history, "best_epoch": best[1]}


def _epoch(
    model: GradeModel,
    optimizer: torch.optim.Optimizer,
    users: torch.Tensor,
    courses: torch.Tensor,
    targets: torch.Tensor,
    settings: Settings,
    generator: torch.Generator,
) -> float:
    model.train()
    order = torch.randperm(len(targets), generator=generator)
    total = 0.0
    for start in range(0, len(order), settings.batch_size):
        batch = order[start : start + settings.batch_size]
        error = model.normalized(users[batch], courses[batch])[:, 0] - targets[batch]
        loss = (error * error).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch)
    # Mean of the batch losses while the weights moved: a cheap running figure.
    return float(np.sqrt(total / len(order)))


def evaluate(model: GradeModel, dataset: Dataset) -> dict[str, Any]:
    """RMSE per split, and the global-mean baseline on the same splits."""
    train_mean = float(dataset.part("train")[2].mean())
    result: dict[str, Any] = {"rmse": {}, "baseline_global_mean_rmse": {}}
    for name in ("train", "validation", "test"):
        users, courses, grades = dataset.part(name)
        result["rmse"][name] = rmse(model, users, courses, grades)
        result["baseline_global_mean_rmse"][name] = float(
            np.sqrt(np.mean((grades - train_mean) ** 2))
        )
    result["train_mean_grade"] = train_mean
    return result


def train(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Run the train stage: fit, evaluate, save weights, metrics and curve."""
    dataset = Dataset.load(layout)
    started = time.perf_counter()
    model, fitted = fit(dataset, settings)
    seconds = time.perf_counter() - started

    # Every training step of every run, the strength search included.
    runs = fitted.get("l2_search") or [
        {
            "epochs_run": len(fitted["history"]),
            "step_seconds": sum(h["step_seconds"] for h in fitted["history"]),
        }
    ]
    if settings.solver == "als":
        optimizer: dict[str, Any] = {
            "l2": fitted["l2"],
            "l2_search": fitted["l2_search"],
            "cg_steps": settings.cg_steps,
        }
    else:
        optimizer = {
            "lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "batch_size": settings.batch_size,
        }
    metrics = {
        "model": {
            "kind": settings.model,
            "dim": settings.dim,
            "students": len(dataset.students),
            "courses": len(dataset.courses),
            "grade_min": dataset.grade_min,
            "grade_max": dataset.grade_max,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "training": {
            "seed": settings.seed,
            "optimizer": settings.solver,
            **optimizer,
            "epochs_run": len(fitted["history"]),
            "best_epoch": fitted["best_epoch"],
            "seconds": seconds,
            "runner": "local",
            # Training steps only: not the one-time set-up nor the evaluation
            # after each epoch. An ALS sweep counts as one epoch.
            "samples_per_second": len(dataset.part("train")[2])
            * sum(run["epochs_run"] for run in runs)
            / max(sum(run["step_seconds"] for run in runs), 1e-9),
        },
        "history": fitted["history"],
        **evaluate(model, dataset),
    }
    # Saved through a buffer: given a path, torch names the archive's inner
    # folder after the file, and the temporary name would make every save differ.
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    with atomic_path(layout.weights) as tmp:
        tmp.write_bytes(buffer.getvalue())
    write_json(layout.metrics, metrics)
    plot_loss_curve(fitted["history"], layout)
    log.info(
        "train: test RMSE %.4f (global-mean baseline %.4f), best epoch %d of %d",
        metrics["rmse"]["test"],
        metrics["baseline_global_mean_rmse"]["test"],
        fitted["best_epoch"],
        len(fitted["history"]),
    )
    return metrics


def plot_loss_curve(history: list[dict[str, float]], layout: Layout) -> None:
    """Write the train/validation RMSE per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on build machines
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_rmse"] for h in history], label="train")
    ax.plot(epochs, [h["validation_rmse"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (grade points)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(layout.loss_curve) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def load_model(layout: Layout) -> GradeModel:
    """Rebuild the trained model from ``model.pt`` and ``metrics.json``."""
    from coursedlc.errors import StageInputError
    from coursedlc.files import read_json

    if not layout.weights.exists() or not layout.metrics.exists():
        raise StageInputError(
            f"no trained model in {layout.model_dir}: run `invoke train` first"
        )
    spec = read_json(layout.metrics)["model"]
    model = build_model(
        spec["kind"],
        spec["students"],
        spec["courses"],
        spec["dim"],
        spec["grade_min"],
        spec["grade_max"],
    )
    # weights_only=True: a state_dict is plain tensors; nothing is unpickled
    # beyond them, so a tampered file cannot run code.
    model.load_state_dict(torch.load(layout.weights, weights_only=True))
    model.eval()
    return model
