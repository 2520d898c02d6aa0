"""Choosing the Qualcomm toolchain: an installed QAIRT SDK or the embedded one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from coursedlc.errors import SdkError
from coursedlc.sdk import Sdk, default_places, find_sdk, venv_python
from coursedlc.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backend:
    """The resolved backend; ``sdk`` and ``venv`` are set for the SDK backend."""

    name: str
    sdk: Sdk | None = None
    venv: Path | None = None

    @property
    def python(self) -> Path:
        """The SDK venv's Python (SDK backend only)."""
        assert self.venv is not None
        return venv_python(self.venv)

    def describe(self) -> dict[str, str]:
        """What the report says made a DLC."""
        if self.sdk is None:
            return {"backend": "embedded", "toolchain": "onnxruntime-qnn"}
        return {
            "backend": "sdk",
            "toolchain": "QAIRT SDK",
            "sdk_version": self.sdk.version,
            "sdk_root": str(self.sdk.root),
        }


def resolve(settings: Settings) -> Backend:
    """The backend for these settings, logged once per process.

    Raises:
        SdkError: ``--backend sdk`` without an SDK, an invalid ``--sdk-root``, or an
            SDK whose venv is missing or of the wrong Python version.
    """
    return _resolve(
        settings.backend, settings.sdk_root, settings.sdk_venv, settings.sdk_python
    )


@cache
def _resolve(kind: str, root: Path | None, venv: Path | None, python: str) -> Backend:
    if kind == "embedded":
        log.info("backend: embedded (onnxruntime-qnn), as requested")
        return Backend("embedded")

    sdk = find_sdk(root)
    if sdk is None:
        places = ", ".join(str(p) for p in default_places()) or "none for this OS"
        if kind == "sdk":
            raise SdkError(
                f"--backend sdk, but no QAIRT SDK was given or found (looked in "
                f"{places}); pass --sdk-root or set QAIRT_SDK_ROOT"
            )
        log.info(
            "backend: embedded (onnxruntime-qnn); no QAIRT SDK given with "
            "--sdk-root or QAIRT_SDK_ROOT, none installed in %s",
            places,
        )
        return Backend("embedded")

    sdk.require("qairt-converter", "snpe-onnx-to-dlc")
    sdk.require("qairt-quantizer", "snpe-dlc-quant")
    venv = Path(venv) if venv else sdk.root / "bin" / "venv"
    _check_venv(sdk, venv, python)
    log.info(
        "backend: QAIRT SDK %s at %s (Python venv %s)", sdk.version, sdk.root, venv
    )
    return Backend("sdk", sdk, venv)


def _check_venv(sdk: Sdk, venv: Path, python: str) -> None:
    from coursedlc.sdk_venv import MARKER

    marker = venv / MARKER
    if not venv_python(venv).exists() or not marker.exists():
        raise SdkError(
            f"QAIRT SDK {sdk.version} found at {sdk.root}, but its Python venv "
            f"{venv} is not set up: run `invoke setup-sdk-venv` (or pass "
            "--backend embedded)"
        )
    import json

    recorded = json.loads(marker.read_text(encoding="utf-8")).get("python")
    if recorded != python:
        raise SdkError(
            f"the SDK venv {venv} has Python {recorded}; the SDK's tools need "
            f"Python {python}: run `invoke setup-sdk-venv --venv NEW_PATH`"
        )
