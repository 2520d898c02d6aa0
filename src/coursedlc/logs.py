"""Logging set-up for the command line and the Invoke tasks."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT_FILE = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Console(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


def configure(out: Path | None, verbose: bool = False) -> None:
    """INFO (or DEBUG) to the console; DEBUG to ``<out>/logs/coursedlc.log``."""
    root = logging.getLogger("coursedlc")
    root.setLevel(logging.DEBUG)
    root.propagate = False
    top = logging.getLogger()
    for logger in (root, top):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    # Libraries that log to the root logger (onnxruntime.quantization warns about
    # image pre-processing on every run) go to the log file only; a handler on
    # the root also stops logging.warning() from adding a console handler.
    top.addHandler(logging.NullHandler())

    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(_Console("%(message)s"))
    root.addHandler(console)

    if out is not None:
        try:
            (Path(out) / "logs").mkdir(parents=True, exist_ok=True)
            file = logging.FileHandler(
                Path(out) / "logs" / "coursedlc.log", "a", "utf-8"
            )
        except OSError as exc:
            # A read-only or full build folder is reported by the stage that
            # tries to write it; logging goes on to the console.
            root.warning("no log file in %s: %s", out, exc.strerror)
            return
        file.setLevel(logging.DEBUG)
        file.setFormatter(logging.Formatter(FORMAT_FILE))
        root.addHandler(file)
        top.addHandler(file)
