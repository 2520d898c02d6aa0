"""Run coursedlc's stages without Invoke: python -m coursedlc STAGE [--option VALUE].

Options are every setting of coursedlc.settings.Settings, with dashes. This
command does not read invoke.yaml; QAIRT_SDK_ROOT is read as with Invoke.
"""

from __future__ import annotations

import argparse
import os
import sys

from coursedlc import logs, pipeline
from coursedlc.errors import CourseDLCError
from coursedlc.settings import Settings, environment_layer


def parser() -> argparse.ArgumentParser:
    """Argument parser with one option per setting."""
    p = argparse.ArgumentParser(prog="coursedlc", description=__doc__)
    p.add_argument("stage", choices=[*pipeline.NAMES, "build"])
    p.add_argument("--force", action="store_true", help="build: re-run every stage")
    p.add_argument(
        "--force-stage",
        action="append",
        default=[],
        metavar="NAME",
        help="build: re-run this stage (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="DEBUG on console")
    for name, field in Settings.model_fields.items():
        flag = f"--{name.replace('_', '-')}"
        if field.annotation is bool:
            p.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"default: {'on' if field.default else 'off'}",
            )
        else:
            p.add_argument(
                flag, dest=name, default=None, help=f"default: {field.default}"
            )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a stage or the whole build; return the exit code."""
    args = vars(parser().parse_args(argv))
    stage, verbose = args.pop("stage"), args.pop("verbose")
    force, force_stages = args.pop("force"), args.pop("force_stage")
    try:
        settings = Settings.load(environment_layer(), args)
        for_host = os.environ.get(pipeline.FOR_HOST) == "1"
        logs.configure(None if for_host else settings.out, verbose)
        pipeline.run(stage, settings, force, force_stages)
    except CourseDLCError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
