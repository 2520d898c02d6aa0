"""The stages in order, each a function of (layout, settings) passing files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursedlc.errors import StageInputError
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)


def _prepare(layout: Layout, s: Settings) -> Any:
    from coursedlc.dataset import prepare

    return prepare(
        s.data,
        layout,
        s.grade_min,
        s.grade_max,
        s.seed,
        s.validation_fraction,
        s.test_fraction,
    )


def _train(layout: Layout, s: Settings) -> Any:
    from coursedlc import container
    from coursedlc.train import train

    if s.runner == "docker" or (s.runner == "auto" and container.engine_answers()):
        from coursedlc.files import read_json

        tag = container.build_image(layout, s.base_image)
        container.run_train(layout, s, tag)
        return read_json(layout.metrics)
    if s.runner == "auto":
        log.info("train: no container engine answers; training locally")
    return train(layout, s)


def _export(layout: Layout, s: Settings) -> Any:
    from coursedlc.export import export

    return export(layout, s)


def _convert(layout: Layout, s: Settings) -> Any:
    from coursedlc.convert import convert

    return convert(layout, s)


def _quantize(layout: Layout, s: Settings) -> Any:
    from coursedlc.quantize import quantize

    return quantize(layout, s)


def _verify(layout: Layout, s: Settings) -> Any:
    from coursedlc.verify import verify

    return verify(layout, s)


def _report(layout: Layout, s: Settings) -> Any:
    from coursedlc.report import write_report

    return write_report(layout, s)


# Imports are deferred so that a stage loads only the libraries it needs.
STAGES: dict[str, Callable[[Layout, Settings], Any]] = {
    "prepare": _prepare,
    "train": _train,
    "export": _export,
    "convert": _convert,
    "quantize": _quantize,
    "verify": _verify,
    "report": _report,
}


def _makers(layout: Layout) -> dict[Path, tuple[str, list[Path]]]:
    """Each artifact a stage reads: the stage that makes it, and from what."""
    split = layout.data_dir / "split.npy"
    return {
        split: ("prepare", []),
        layout.weights: ("train", [split]),
        layout.onnx: ("export", [layout.weights]),
        layout.float_dlc: ("convert", [layout.onnx]),
        layout.int8_dlc: ("quantize", [layout.onnx]),
        layout.verify: ("verify", [layout.int8_dlc]),
    }


def _reads(layout: Layout, stage: str) -> list[Path]:
    return {
        "train": [layout.data_dir / "split.npy"],
        "export": [layout.weights],
        "convert": [layout.onnx],
        "quantize": [layout.onnx],
        "verify": [layout.int8_dlc],
        "report": [layout.verify, layout.float_dlc],
    }.get(stage, [])


def check_fresh(layout: Layout, stage: str) -> None:
    """Refuse to run on inputs older than what they are made from.

    Re-running one stage (say ``train``) leaves later artifacts (the ONNX
    model) describing the previous run; a later stage must not mix the two.

    Raises:
        StageInputError: naming the stale file and the stage to re-run.
    """
    makers = _makers(layout)
    stale: list[tuple[Path, Path, str]] = []
    todo = list(_reads(layout, stage))
    while todo:
        path = todo.pop()
        maker, sources = makers[path]
        for source in sources:
            if (
                path.exists()
                and source.exists()
                and path.stat().st_mtime_ns < source.stat().st_mtime_ns
            ):
                stale.append((path, source, maker))
            todo.append(source)
    if stale:
        # Name the earliest stage to re-run: the ones after it follow from it.
        path, source, maker = min(stale, key=lambda s: list(STAGES).index(s[2]))
        raise StageInputError(
            f"{path} is older than {source}, from which it is made: run "
            f"`invoke {maker}` and the stages after it (or the whole "
            "`invoke build`) first"
        )


def run_stage(name: str, settings: Settings) -> Any:
    """Run one stage on ``settings.out``.

    Raises:
        StageInputError: an input is missing or older than its own inputs.
    """
    layout = Layout(settings.out)
    check_fresh(layout, name)
    layout.out.mkdir(parents=True, exist_ok=True)
    layout.marker.touch()
    started = time.perf_counter()
    result = STAGES[name](layout, settings)
    log.debug("%s took %.1fs", name, time.perf_counter() - started)
    return result


def run(name: str, settings: Settings) -> Any:
    """Run ``build`` (every stage) or one stage by name."""
    return build(settings) if name == "build" else run_stage(name, settings)


def build(settings: Settings) -> dict[str, Any]:
    """Run every stage in order; return the report.

    The Qualcomm backend is resolved first, so a wrong SDK setting fails before
    any training time is spent.
    """
    from coursedlc.backend import resolve

    resolve(settings)
    report: dict[str, Any] = {}
    for name in STAGES:
        report = run_stage(name, settings)
    return report
