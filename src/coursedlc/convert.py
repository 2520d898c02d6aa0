"""The convert stage: float ONNX to float DLC on the embedded backend."""

from __future__ import annotations

import logging
from typing import Any

from coursedlc import qnn
from coursedlc.backend import resolve
from coursedlc.errors import StageInputError
from coursedlc.files import write_json
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

# The SDK quantizer calibrates batch-1 models only, so the SDK backend makes no
# pair of recommendation DLCs.
RECOMMEND_SDK_NOTE = (
    "recommendation DLCs (one inference per student) are made by the embedded "
    "backend only; the SDK backend made none"
)


def convert(layout: Layout, settings: Settings) -> dict[str, Any]:
    """Write ``dlc/model_float.dlc`` and its description."""
    if not layout.onnx.exists():
        raise StageInputError(f"no {layout.onnx}: run `invoke export` first")
    backend = resolve(settings)
    if backend.sdk is not None:
        from coursedlc import sdk_backend

        info = sdk_backend.convert(layout, settings, backend)
    else:
        info = qnn.write_dlc(
            layout.onnx,
            layout.float_dlc,
            settings.soc_model,
            layout.logs / "convert.log",
        )
        info["made_by"] = backend.describe()
        if settings.recommend_model:
            info["recommend"] = qnn.write_dlc(
                layout.onnx_recommend,
                layout.float_recommend_dlc,
                settings.soc_model,
                layout.logs / "convert.log",
            )
    if settings.recommend_model and backend.sdk is not None:
        info["recommend"] = RECOMMEND_SDK_NOTE
        log.warning("convert: %s", RECOMMEND_SDK_NOTE)
    write_json(layout.float_dlc_info, info)
    log.info(
        "convert: %s, %d bytes, ops %s, converter %s",
        layout.float_dlc,
        info["bytes"],
        info["ops"],
        info.get("converter_version"),
    )
    return info
