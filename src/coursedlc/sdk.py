"""Finding an installed QAIRT SDK and giving its tools their environment.

The environment is what the SDK's ``envsetup.sh``/``envsetup.ps1`` would set,
built directly for the child process: nothing is sourced and no shell runs.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

import yaml

from coursedlc.errors import SdkError

# Platform folders under bin/ and lib/, by (sys.platform, machine).
PLATFORMS = {
    ("linux", "x86_64"): "x86_64-linux-clang",
    ("win32", "amd64"): "x86_64-windows-msvc",
    ("win32", "x86_64"): "x86_64-windows-msvc",
    ("win32", "arm64"): "aarch64-windows-msvc",
    ("win32", "aarch64"): "aarch64-windows-msvc",
}

# Where installers put SDKs, one version per sub-folder.
DEFAULT_PLACES = {
    "win32": (PureWindowsPath(r"C:\QualcommSNPE\qairt"),),
    "linux": (PurePosixPath("/opt/qcom/aistack/qairt"),),
}

# Tools that are Python scripts and must run under the SDK venv's Python.
PYTHON_TOOLS = frozenset(
    {
        "qairt-converter",
        "qairt-quantizer",
        "qairt-dlc-info",
        "snpe-onnx-to-dlc",
        "snpe-dlc-info",
        "check-python-dependency",
    }
)


def host_platform(system: str | None = None, machine: str | None = None) -> str:
    """The SDK platform folder for this host.

    Raises:
        SdkError: the SDK ships no host tools for this system and processor.
    """
    system = system or sys.platform
    machine = (machine or platform.machine()).lower()
    try:
        return PLATFORMS[(system, machine)]
    except KeyError:
        raise SdkError(
            f"the QAIRT SDK has no host tools for {system}/{machine}; use Linux "
            "x86_64 or Windows (x86_64 or ARM64), or the embedded backend"
        ) from None


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a dotted version such as ``2.36.0.250627``."""
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


@dataclass(frozen=True)
class Sdk:
    """One SDK install: its root, version and this host's platform folder."""

    root: Path
    version: str
    platform: str

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin" / self.platform

    @property
    def lib_dir(self) -> Path:
        return self.root / "lib" / self.platform

    def tool(self, name: str) -> Path | None:
        """Path of a tool in ``bin/<platform>`` (or ``bin/`` for helpers)."""
        for folder in (self.bin_dir, self.root / "bin"):
            for candidate in (folder / name, folder / f"{name}.exe"):
                if candidate.is_file():
                    return candidate
        return None

    def require(self, *names: str) -> tuple[str, Path]:
        """The first of ``names`` that exists, as (name, path).

        Raises:
            SdkError: none exists; the message says where it looked.
        """
        for name in names:
            path = self.tool(name)
            if path is not None:
                return name, path
        raise SdkError(
            f"the QAIRT SDK {self.version} at {self.root} has none of "
            f"{', '.join(names)} in {self.bin_dir} or {self.root / 'bin'}; "
            "is the SDK install complete?"
        )

    def environment(
        self,
        base: Mapping[str, str],
        venv: Path | None = None,
        system: str | None = None,
    ) -> dict[str, str]:
        """The child environment ``envsetup`` would give, plus the venv."""
        system = system or sys.platform
        env = dict(base)
        env["QAIRT_SDK_ROOT"] = str(self.root)
        if (self.root / "include" / "SNPE").is_dir():
            env["SNPE_ROOT"] = str(self.root)
        if (self.root / "include" / "QNN").is_dir():
            env["QNN_SDK_ROOT"] = str(self.root)
        sep = ";" if system == "win32" else ":"
        _prepend(env, "PYTHONPATH", self.root / "lib" / "python", sep)
        paths = [self.bin_dir]
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
            paths.insert(0, venv_bin(venv, system))
        if system == "win32":
            paths.append(self.lib_dir)
        else:
            _prepend(env, "LD_LIBRARY_PATH", self.lib_dir, sep)
        for folder in reversed(paths):
            _prepend(env, "PATH", folder, sep)
        return env

    def argv(
        self, tool: Path, python: Path, *args: str | os.PathLike[str]
    ) -> list[str]:
        """Command line for a tool: Python scripts run under the venv's Python."""
        stem = tool.name.removesuffix(".exe")
        head = [str(python), str(tool)] if stem in PYTHON_TOOLS else [str(tool)]
        return head + [os.fspath(a) for a in args]


def _prepend(env: dict[str, str], key: str, folder: PurePath, sep: str) -> None:
    env[key] = sep.join(p for p in (str(folder), env.get(key, "")) if p)


def venv_bin(venv: Path, system: str | None = None) -> Path:
    """The venv's scripts folder."""
    return venv / ("Scripts" if (system or sys.platform) == "win32" else "bin")


def venv_python(venv: Path, system: str | None = None) -> Path:
    """The venv's Python executable."""
    name = "python.exe" if (system or sys.platform) == "win32" else "python"
    return venv_bin(venv, system) / name


def load_sdk(root: Path, system: str | None = None, machine: str | None = None) -> Sdk:
    """Read an SDK root: its version from ``sdk.yaml``, its platform folder.

    Raises:
        SdkError: not an SDK root, or no tools for this host inside it.
    """
    root = Path(root)
    if not root.is_dir():
        raise SdkError(
            f"QAIRT SDK root {root} does not exist; fix --sdk-root or QAIRT_SDK_ROOT"
        )
    manifest = root / "sdk.yaml"
    if not manifest.is_file():
        raise SdkError(
            f"{root} is not a QAIRT SDK root: no sdk.yaml there (the root is the "
            "folder holding sdk.yaml, bin/ and lib/); fix --sdk-root or "
            "QAIRT_SDK_ROOT"
        )
    try:
        version = str(yaml.safe_load(manifest.read_text(encoding="utf-8"))["version"])
    except (yaml.YAMLError, KeyError, TypeError):
        raise SdkError(f"{manifest}: no 'version:' entry") from None
    sdk = Sdk(root, version, host_platform(system, machine))
    if not sdk.bin_dir.is_dir():
        found = (
            sorted(p.name for p in (root / "bin").iterdir() if p.is_dir())
            if (root / "bin").is_dir()
            else []
        )
        raise SdkError(
            f"QAIRT SDK {version} at {root} has no {sdk.bin_dir} for this host "
            f"(platform folders found: {', '.join(found) or 'none'})"
        )
    return sdk


def find_sdk(
    sdk_root: Path | None,
    places: Sequence[PurePath] | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> Sdk | None:
    """The SDK at ``sdk_root``, else the newest under the default places.

    Returns ``None`` when no root was given and none is installed.
    """
    if sdk_root is not None:
        return load_sdk(Path(sdk_root), system, machine)
    for place in places if places is not None else default_places(system):
        folder = Path(place)
        if not folder.is_dir():
            continue
        versions = sorted(
            (p for p in folder.iterdir() if (p / "sdk.yaml").is_file()),
            key=lambda p: version_key(p.name),
        )
        if versions:
            return load_sdk(versions[-1], system, machine)
    return None


def default_places(system: str | None = None) -> tuple[PurePath, ...]:
    """Default install places for this system."""
    return DEFAULT_PLACES.get(system or sys.platform, ())
