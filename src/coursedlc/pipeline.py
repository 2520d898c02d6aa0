"""The stages in order, each a function of (layout, settings) passing files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

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
    from coursedlc.train import train

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


def run_stage(name: str, settings: Settings) -> Any:
    """Run one stage on ``settings.out``."""
    layout = Layout(settings.out)
    layout.out.mkdir(parents=True, exist_ok=True)
    layout.marker.touch()
    started = time.perf_counter()
    result = STAGES[name](layout, settings)
    log.debug("%s took %.1fs", name, time.perf_counter() - started)
    return result


def build(settings: Settings) -> dict[str, Any]:
    """Run every stage in order; return the report."""
    report: dict[str, Any] = {}
    for name in STAGES:
        report = run_stage(name, settings)
    return report
