"""``build/manifest.json``: what each stage last ran with, and what it made.

Per stage: the settings that shape it, the hashes of its input files, of its
own source code and the versions of the packages it ran on, then the hashes of
its outputs. A stage is up to date when all of these still hold.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from coursedlc.files import read_json, sha256, write_json
from coursedlc.settings import Layout, Settings
from coursedlc.stages import Stage

SOURCE = Path(__file__).resolve().parent


def name_of(path: Path, layout: Layout) -> str:
    """A path as recorded: relative to the build folder when inside it, else
    absolute (a relative data path means nothing once the folder moves)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(layout.out.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def _path(name: str, layout: Layout) -> Path:
    """The file a recorded name stands for."""
    path = Path(name)
    return path if path.is_absolute() else layout.out / path


def _hashes(paths: list[Path], layout: Layout) -> dict[str, str | None]:
    return {name_of(p, layout): sha256(p) if Path(p).is_file() else None for p in paths}


def _code(stage: Stage) -> str:
    digest = hashlib.sha256()
    for module in sorted(stage.code):
        digest.update((SOURCE / f"{module}.py").read_bytes())
    return digest.hexdigest()


def _versions(stage: Stage) -> dict[str, str]:
    found = {}
    for name in stage.packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def fingerprint(stage: Stage, layout: Layout, settings: Settings) -> dict[str, Any]:
    """Everything that decides the stage's outputs, as it is now."""
    params = settings.model_dump(mode="json", include=set(stage.params))
    return {
        "params": dict(sorted(params.items())),
        "inputs": _hashes(stage.inputs(layout, settings), layout),
        "code": _code(stage),
        "tools": _versions(stage),
    }


def load(layout: Layout) -> dict[str, Any]:
    """The manifest, or an empty one."""
    path = layout.out / "manifest.json"
    return read_json(path) if path.is_file() else {}


def save(layout: Layout, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    write_json(layout.out / "manifest.json", manifest)


def record(
    manifest: dict[str, Any],
    stage: Stage,
    layout: Layout,
    settings: Settings,
    current: dict[str, Any],
) -> None:
    """Note that ``stage`` finished with ``current`` and its outputs as they are."""
    manifest[stage.name] = {
        **current,
        "outputs": _hashes(stage.outputs(layout, settings), layout),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def why_stale(
    entry: dict[str, Any] | None,
    current: dict[str, Any] | None,
    layout: Layout,
) -> str | None:
    """Why a stage must run again, or ``None`` if it is up to date.

    Without ``current`` (the stage's fingerprint now), settings, code and tool
    versions are not compared: the question is only whether the files it read,
    and those it made, are still on disk as they were.
    """
    if entry is None:
        return (
            "no finished run is recorded (never ran here, or was interrupted or failed)"
        )
    if current is None:
        for name, digest in entry.get("inputs", {}).items():
            path = _path(name, layout)
            if (sha256(path) if path.is_file() else None) != digest:
                return f"its input {name} changed"
    else:
        for key in ("params", "inputs", "code", "tools"):
            if entry.get(key) != current[key]:
                return _difference(key, entry.get(key) or {}, current[key])
    for name, digest in entry.get("outputs", {}).items():
        path = layout.out / name
        if not path.is_file():
            return f"output {name} is missing"
        if digest != sha256(path):
            return f"output {name} changed since the stage made it"
    return None


def _difference(key: str, old: Any, new: Any) -> str:
    if key == "code":
        return "its source code changed"
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    shown = ", ".join(
        f"{k}: {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}"
        if key != "inputs"
        else k
        for k in changed[:3]
    ) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    label = {"params": "settings", "inputs": "inputs", "tools": "tool versions"}[key]
    return f"{label} changed ({shown})"
