"""Command line: ``python -m coursedlc STAGE [--option VALUE ...]``.

The same stages as the Invoke tasks, for use without Invoke. Options are the
fields of :class:`coursedlc.settings.Settings`, with dashes.
"""

from __future__ import annotations

import argparse
import sys

from coursedlc import logs, pipeline
from coursedlc.errors import CourseDLCError
from coursedlc.settings import Settings


def parser() -> argparse.ArgumentParser:
    """Argument parser with one option per setting."""
    p = argparse.ArgumentParser(prog="coursedlc", description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=[*pipeline.STAGES, "build"])
    p.add_argument("-v", "--verbose", action="store_true", help="DEBUG on console")
    for name, field in Settings.model_fields.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            help=f"default: {field.default}",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a stage or the whole build; return the exit code."""
    args = vars(parser().parse_args(argv))
    stage, verbose = args.pop("stage"), args.pop("verbose")
    try:
        settings = Settings.load(args)
        logs.configure(settings.out, verbose)
        if stage == "build":
            pipeline.build(settings)
        else:
            pipeline.run_stage(stage, settings)
    except CourseDLCError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
