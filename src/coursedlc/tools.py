"""The one way coursedlc runs an external program.

Every tool runs from an argv list (never a shell string), is echoed to the log
before it runs, and has its output kept in a log file. A failure raises
:class:`ToolError` with the exit code, the last lines of output and the log's
path.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from coursedlc.errors import ToolError

log = logging.getLogger(__name__)

TAIL_LINES = 15


def display(argv: Sequence[str | os.PathLike[str]]) -> str:
    """The argv as a user would type it on this platform (for logs only)."""
    args = [os.fspath(a) for a in argv]
    if sys.platform == "win32":
        return subprocess.list2cmdline(args)
    return shlex.join(args)


def run_tool(
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> tuple[int, str]:
    """Run ``argv``; append its output to ``log_path``; return (code, output).

    Raises:
        ToolError: the program is missing, exits non-zero (when ``check``), or
            runs longer than ``timeout`` seconds.
    """
    args = [os.fspath(a) for a in argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("$ %s", display(args))
    started = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as sink:
        sink.write(f"$ {display(args)}\n")
        sink.flush()
        try:
            done = subprocess.run(  # noqa: S603 - argv list, no shell
                args,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except FileNotFoundError:
            sink.write("[not found]\n")
            raise ToolError(f"{args[0]}: no such program; see {log_path}") from None
        except subprocess.TimeoutExpired as exc:
            output = _text(exc.output)
            sink.write(output + f"\n[killed after {timeout}s]\n")
            raise ToolError(
                f"{Path(args[0]).name} did not finish within {timeout:g}s and was "
                f"stopped. Last lines:\n{_tail(output)}\nFull log: {log_path}"
            ) from None
        sink.write(done.stdout)
        sink.write(
            f"[exit code {done.returncode} after "
            f"{time.perf_counter() - started:.1f}s]\n"
        )

    if check and done.returncode != 0:
        tool = Path(args[1] if _is_python(args[0]) and len(args) > 1 else args[0]).name
        raise ToolError(
            f"{tool} failed with exit code {done.returncode}. Last lines:\n"
            f"{_tail(done.stdout)}\nFull log: {log_path}",
            done.returncode,
        )
    return done.returncode, done.stdout


def _is_python(program: str) -> bool:
    return Path(program).name.lower().startswith("python")


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def _tail(output: str) -> str:
    lines = output.rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join(f"  | {line}" for line in lines) or "  | (no output)"
