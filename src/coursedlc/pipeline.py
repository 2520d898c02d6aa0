"""Running the stages: incremental, one build folder at a time.

``build`` runs every stage that is not up to date (see :mod:`manifest`); a
single stage run by name always runs, after checking that the files it reads
are still the ones their own stages made. A lock keeps two runs out of one
build folder.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from coursedlc import manifest
from coursedlc.errors import CourseDLCError, StageInputError, WriteError
from coursedlc.files import write_json
from coursedlc.settings import Layout, Settings
from coursedlc.stages import BY_NAME, STAGES, Stage

log = logging.getLogger(__name__)

NAMES = tuple(stage.name for stage in STAGES)

# Set for a stage that runs in the training container on behalf of a host run:
# the host holds the lock, checks the inputs, keeps the manifest and the log.
FOR_HOST = "COURSEDLC_FOR_HOST"


class LockedError(CourseDLCError):
    """Another coursedlc run holds the build folder."""


# Errors of the disk, not of our code: reported as what to do about them.
DISK_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


@contextlib.contextmanager
def disk_errors_explained(layout: Layout) -> Iterator[None]:
    """Turn a full, read-only or forbidden build folder into a :class:`WriteError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        raise WriteError(
            f"cannot write {exc.filename or layout.out}: {exc.strerror}. Free space "
            f"on that disk or make {layout.out} writable (or pass another --out); "
            "finished artifacts were left as they were and the stage that failed "
            "will run again next time"
        ) from None


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold the build folder's lock, or fail at once naming it."""
    from filelock import FileLock, Timeout

    layout.out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(layout.out / ".coursedlc.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockedError(
            f"another coursedlc run is using {layout.out} (it holds "
            f"{lock.lock_file}); wait for it to finish or use another --out"
        ) from None
    try:
        layout.marker.touch()
        yield
    finally:
        lock.release()


def _execute(
    stage: Stage,
    layout: Layout,
    settings: Settings,
    entries: dict[str, Any],
    current: dict[str, Any],
) -> Any:
    # Forget the old record first: if the stage is interrupted, the next run
    # sees a stage that never finished, whatever files it left.
    entries.pop(stage.name, None)
    manifest.save(layout, entries)
    started = time.perf_counter()
    result = stage.run(layout, settings)
    manifest.record(entries, stage, layout, settings, current)
    manifest.save(layout, entries)
    log.debug("%s took %.1fs", stage.name, time.perf_counter() - started)
    return result


def check_upstream(
    stage: Stage, layout: Layout, settings: Settings, entries: dict[str, Any]
) -> None:
    """Refuse to run one stage on files its predecessors no longer vouch for.

    Raises:
        StageInputError: naming the earliest stage to re-run.
    """

    def names(paths: list[Any]) -> set[str]:
        return {manifest.name_of(p, layout) for p in paths}

    # The earlier stages whose outputs this stage reads, directly or through
    # another earlier stage, found walking backwards.
    reads = names(stage.inputs(layout, settings))
    feeding = []
    for earlier in reversed(STAGES[: NAMES.index(stage.name)]):
        if names(earlier.outputs(layout, settings)) & reads:
            feeding.append(earlier)
            reads |= names(earlier.inputs(layout, settings))
    stale = [
        (earlier.name, reason)
        for earlier in reversed(feeding)
        if (reason := manifest.why_stale(entries.get(earlier.name), None, layout))
    ]
    if stale:
        name, reason = stale[0]
        if entries.get(name) is None:  # never finished here
            raise StageInputError(
                f"{stage.name} needs what `{name}` makes, and {name} has not run in "
                f"{layout.out}: run `invoke {name}` first (or `invoke build`)"
            )
        raise StageInputError(
            f"{stage.name} reads what `{name}` made, but {name} is out of date "
            f"({reason}): run `invoke {name}` and the stages after it, or "
            "`invoke build`"
        )


def run_stage(name: str, settings: Settings) -> Any:
    """Run one stage, whether or not it is up to date.

    Raises:
        StageInputError: an input is missing or out of date.
    """
    layout = Layout(settings.out)
    stage = BY_NAME[name]
    if os.environ.get(FOR_HOST) == "1":
        return stage.run(layout, settings)
    with disk_errors_explained(layout), locked(layout):
        entries = manifest.load(layout)
        check_upstream(stage, layout, settings, entries)
        current = manifest.fingerprint(stage, layout, settings)
        return _execute(stage, layout, settings, entries, current)


def build(
    settings: Settings, force: bool = False, force_stages: Iterable[str] = ()
) -> list[str]:
    """Run the stages that are not up to date, in order; return those that ran.

    The Qualcomm backend is resolved first, so a wrong SDK setting fails before
    any training time is spent.
    """
    from coursedlc.backend import resolve

    forced = set(force_stages)
    unknown = forced - set(NAMES)
    if unknown:
        raise StageInputError(
            f"--force-stage {', '.join(sorted(unknown))}: no such stage; the "
            f"stages are {', '.join(NAMES)}"
        )
    resolve(settings)
    layout = Layout(settings.out)
    ran = []
    with disk_errors_explained(layout), locked(layout):
        entries = manifest.load(layout)
        status: list[tuple[str, str]] = []
        for stage in STAGES:
            if stage.name == "report":
                # What this build did, for the report to show (not an input).
                write_json(layout.last_build, status)
            current = manifest.fingerprint(stage, layout, settings)
            reason = manifest.why_stale(entries.get(stage.name), current, layout)
            if force or stage.name in forced:
                reason = "forced"
            if reason is None:
                log.info("%s: up to date, skipping", stage.name)
                status.append((stage.name, "up to date, skipped"))
                continue
            status.append((stage.name, f"ran, because {reason}"))
            log.debug("%s: running because %s", stage.name, reason)
            _execute(stage, layout, settings, entries, current)
            ran.append(stage.name)
    return ran


def run(
    name: str, settings: Settings, force: bool = False, force_stages: Iterable[str] = ()
) -> Any:
    """Run ``build`` (the stages that need it) or one stage by name."""
    if name == "build":
        return build(settings, force, force_stages)
    return run_stage(name, settings)
