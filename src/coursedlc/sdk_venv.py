"""The SDK's own Python environment: ``invoke setup-sdk-venv``.

The SDK's Python tools import compiled bindings built for one Python version
(3.10 for the 2.3x SDKs); under another version they fail with ``No module named
'libPyIrGraph'``. This module finds that Python, creates the venv, installs the
pinned ``requirements/sdk-venv.txt`` and runs the SDK's own dependency check.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from coursedlc.errors import SdkError, ToolError
from coursedlc.files import sha256, write_json
from coursedlc.sdk import Sdk, venv_python
from coursedlc.tools import run_tool

log = logging.getLogger(__name__)

MARKER = "coursedlc-sdk-venv.json"
VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


def python_version(python: list[str], log_path: Path) -> str | None:
    """``major.minor`` of a Python command, or ``None`` if it does not run."""
    try:
        code, out = run_tool([*python, "-c", VERSION_PROBE], log_path, check=False)
    except ToolError:
        return None
    return out.strip().splitlines()[-1] if code == 0 and out.strip() else None


def pyenv_candidates(version: str, env: dict[str, str] | None = None) -> list[str]:
    """``python<version>`` executables under pyenv's versions folder, newest first."""
    env = dict(os.environ) if env is None else env
    root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = glob.glob(
        str(root / "versions" / f"{version}.*" / "bin" / f"python{version}")
    )
    return sorted(found, key=_patch_level, reverse=True)


def _patch_level(path: str) -> int:
    patch = Path(path).parents[1].name.split(".")[2]
    return int(patch) if patch.isdigit() else -1


def find_python(version: str, explicit: str | None, log_path: Path) -> list[str]:
    """A command running Python ``version``: ``--python``, then the usual places.

    Raises:
        SdkError: none found (says where it looked), or ``explicit`` is another
            version.
    """
    if explicit:
        found = python_version([explicit], log_path)
        if found != version:
            raise SdkError(
                f"--python {explicit} is Python {found or '(did not run)'}; the "
                f"SDK's tools need Python {version}"
            )
        return [explicit]

    candidates: list[list[str]] = []
    if sys.platform == "win32" and shutil.which("py"):
        candidates.append(["py", f"-{version}"])
    if shutil.which(f"python{version}"):
        candidates.append([f"python{version}"])
    candidates += [[p] for p in pyenv_candidates(version)]
    for candidate in candidates:
        if python_version(candidate, log_path) == version:
            return candidate
    tried = ", ".join(" ".join(c) for c in candidates) or "nothing on PATH or in pyenv"
    raise SdkError(
        f"no Python {version} found (tried: {tried}); install Python {version} "
        "or pass --python PATH"
    )


def setup_sdk_venv(
    sdk: Sdk,
    requirements: Path,
    log_path: Path,
    venv: Path | None = None,
    python: str | None = None,
    version: str = "3.10",
) -> dict[str, Any]:
    """Create (or check) the SDK venv; return what was done and the check verdict.

    Idempotent: a venv of the right version whose installed requirements match
    the file is left as it is.

    Raises:
        SdkError: wrong Python version (for an existing venv or ``python``).
        ToolError: venv creation, pip or the SDK's check failed to run.
    """
    venv = Path(venv) if venv else sdk.root / "bin" / "venv"
    interpreter = venv_python(venv)
    marker = venv / MARKER
    wanted = {"python": version, "requirements_sha256": sha256(requirements)}

    if interpreter.exists():
        have = python_version([str(interpreter)], log_path)
        if have != version:
            raise SdkError(
                f"{venv} is a Python {have} venv; the QAIRT SDK {sdk.version} tools "
                f"need Python {version}. Delete it or pass --venv with another path."
            )
        missing = missing_pins(interpreter, requirements, log_path)
        if marker.exists() and json.loads(marker.read_text()) == wanted and not missing:
            log.info("setup-sdk-venv: %s is up to date (Python %s)", venv, version)
            return {
                "venv": str(venv),
                "created": False,
                "installed": False,
                **_check(sdk, venv, log_path),
            }
        log.info(
            "setup-sdk-venv: %s lacks %s; installing",
            venv,
            ", ".join(missing) or "the current requirements",
        )
    else:
        base = find_python(version, python, log_path)
        log.info("setup-sdk-venv: creating %s with %s", venv, " ".join(base))
        run_tool([*base, "-m", "venv", str(venv)], log_path)

    run_tool(
        [
            str(interpreter),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        log_path,
    )
    write_json(marker, wanted)
    return {
        "venv": str(venv),
        "created": True,
        "installed": True,
        **_check(sdk, venv, log_path),
    }


def missing_pins(interpreter: Path, requirements: Path, log_path: Path) -> list[str]:
    """The ``name==version`` pins of ``requirements`` not installed in the venv."""
    pins = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if "==" in spec:
            name, pin = spec.split("==", 1)
            pins[_normal(name)] = pin.strip()
    _, out = run_tool([str(interpreter), "-m", "pip", "freeze", "--all"], log_path)
    installed = {}
    for line in out.splitlines():
        if "==" in line:
            name, have = line.split("==", 1)
            installed[_normal(name)] = have.strip()
    return sorted(f"{n}=={v}" for n, v in pins.items() if installed.get(n) != v)


def _normal(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _check(sdk: Sdk, venv: Path, log_path: Path) -> dict[str, Any]:
    """Run the SDK's ``check-python-dependency`` when it has one."""
    for names in (
        ("qairt-converter", "snpe-onnx-to-dlc"),
        ("qairt-quantizer", "snpe-dlc-quant"),
    ):
        if not any(sdk.tool(n) for n in names):
            log.warning(
                "setup-sdk-venv: this SDK has none of %s in %s; builds with "
                "it will fail",
                ", ".join(names),
                sdk.bin_dir,
            )
    tool = sdk.tool("check-python-dependency")
    if tool is None:
        log.info("setup-sdk-venv: this SDK has no check-python-dependency")
        return {"check": "not available"}
    code, out = run_tool(
        sdk.argv(tool, venv_python(venv)),
        log_path,
        env=sdk.environment(os.environ, venv),
        check=False,
    )
    verdict = "passed" if code == 0 else f"failed (exit code {code})"
    lines = out.strip().splitlines()[-5:]
    (log.info if code == 0 else log.warning)(
        "check-python-dependency %s%s",
        verdict,
        "".join(f"\n  | {line}" for line in lines),
    )
    return {"check": verdict}
