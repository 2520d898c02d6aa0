"""The training container: building its image and running a stage in it.

Both go through the Docker SDK for Python against whatever ``DOCKER_HOST``
points to (a Docker engine, or Podman's Docker-compatible socket). The image
holds only the pinned training environment; the project's ``src/`` is mounted
read-only at run time, so the container runs the checkout's own code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from coursedlc.errors import ContainerError
from coursedlc.pipeline import FOR_HOST
from coursedlc.settings import Layout, Settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = Path("docker/train.Dockerfile")
IMAGE = "coursedlc-train"
DEFAULT_BASE = "python:3.11-slim-bookworm"
TAIL = 20


def client() -> Any:
    """A Docker SDK client for ``DOCKER_HOST``, checked to answer.

    Raises:
        ContainerError: the docker package is missing or no engine answers.
    """
    try:
        import docker
    except ImportError:
        raise ContainerError(
            "the Docker SDK for Python is not installed: run `python -m pip "
            "install -r requirements/dev.txt`"
        ) from None
    try:
        # mypy takes the repository's docker/ folder for this package.
        engine = docker.from_env(timeout=600)  # type: ignore[attr-defined]
        engine.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise ContainerError(
            f"no container engine answers at {where} ({exc}); start Docker or set "
            "DOCKER_HOST (Podman: `podman system service`), or use --runner local"
        ) from None
    return engine


def engine_answers() -> bool:
    """Whether a container engine answers (for ``--runner auto``)."""
    try:
        client()
    except ContainerError:
        return False
    return True


def image_tag(base_image: str) -> str:
    """``coursedlc-train:<hash>`` of everything that shapes the environment."""
    digest = hashlib.sha256()
    for path in (REPO / DOCKERFILE, REPO / "requirements" / "train.txt"):
        digest.update(path.read_bytes())
    digest.update(base_image.encode())
    return f"{IMAGE}:{digest.hexdigest()[:12]}"


def pip_config() -> dict[str, str]:
    """The host pip's settings (``pip config list``), keys without their scope."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"^[^.]*\.([\w-]+)='(.*)'$", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def redact(url: str) -> str:
    """A URL with any password replaced, for logs."""
    return re.sub(r"(//[^:/@]+:)[^@]+@", r"\1***@", url)


def stage_context(target: Path, base_image: str) -> dict[str, str]:
    """Copy the build context into ``target``; return the build arguments."""
    shutil.rmtree(target, ignore_errors=True)
    for rel in (
        DOCKERFILE,
        Path("requirements/train.txt"),
        Path(".dockerignore"),
        Path("docker/pip/README.md"),
    ):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target / rel)
    pip_dir = target / "docker" / "pip"
    (pip_dir / "wheels").mkdir(parents=True)

    config = pip_config()
    cert = config.get("cert")
    if cert and Path(cert).is_file():
        shutil.copy2(cert, pip_dir / "ca.crt")
    for folder in config.get("find-links", "").split():
        local = Path(folder.removeprefix("file://"))
        for wheel in local.glob("*.whl") if local.is_dir() else []:
            shutil.copy2(wheel, pip_dir / "wheels" / wheel.name)

    # file:// indexes are host paths, useless inside the build.
    remote = {
        key: " ".join(
            u
            for u in config.get(name, "").split()
            if "://" in u and not u.startswith("file:")
        )
        for key, name in (
            ("PIP_INDEX_URL", "index-url"),
            ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
            ("PIP_TRUSTED_HOST", "trusted-host"),
        )
    }
    args = {k: v for k, v in remote.items() if v}
    args["BASE_IMAGE"] = base_image
    if any((pip_dir / "wheels").glob("torch-*.whl")):
        args["TORCH_INDEX_URL"] = ""
    return args


def build_image(
    layout: Layout, base_image: str | None = None, force: bool = False
) -> str:
    """Build the training image unless one with the same tag exists; return the tag.

    Raises:
        ContainerError: no engine, or the build failed (with its last lines).
    """
    base = base_image or DEFAULT_BASE
    tag = image_tag(base)
    engine = client()
    if not force and engine.images.list(name=tag):
        log.info("image: %s is up to date, not rebuilt", tag)
        return tag

    context = layout.out / "image-context"
    args = stage_context(context, base)
    shown = {k: redact(v) for k, v in args.items()}
    log.info("image: building %s from %s with %s", tag, DOCKERFILE, shown)
    log_path = layout.logs / "image.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL)
    with open(log_path, "w", encoding="utf-8") as sink:
        try:
            for chunk in engine.api.build(
                path=str(context),
                dockerfile=DOCKERFILE.as_posix(),
                tag=tag,
                buildargs=args,
                rm=True,
                decode=True,
                network_mode="host",
            ):
                text = chunk.get("stream") or chunk.get("error") or ""
                sink.write(text)
                tail.extend(text.splitlines())
                if "error" in chunk:
                    raise ContainerError(
                        f"image build failed: {chunk['error'].strip()}. Last lines:"
                        f"\n{_lines(tail)}\nFull log: {log_path}\nWithout a "
                        "reachable registry, build on a local base image: "
                        "--base-image, base_image in invoke.yaml or "
                        "COURSEDLC_BASE_IMAGE"
                    )
        finally:
            shutil.rmtree(context, ignore_errors=True)
    log.info("image: built %s", tag)
    return tag


def run_train(layout: Layout, settings: Settings, image: str) -> None:
    """Run the train stage in the container on ``layout``'s build folder.

    Raises:
        ContainerError: the container failed, with its exit code and last lines.
    """
    engine = client()
    out = layout.out.resolve()
    command = ["train", "--out", "/build"]
    from coursedlc.stages import BY_NAME

    # Exactly the settings that shape the train stage's outputs.
    for name in BY_NAME["train"].params:
        value = getattr(settings, name)
        if value is None:  # unset: the container resolves the same default
            continue
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        command += [f"--{name.replace('_', '-')}", text]
    user = f"{os.getuid()}:{os.getgid()}" if hasattr(os, "getuid") else None
    log.info(
        "train: in container %s as %s: %s",
        image,
        user or "image user",
        " ".join(command),
    )

    container = engine.containers.run(
        image,
        command,
        detach=True,
        user=user,
        network_mode="none",
        environment={FOR_HOST: "1"},
        volumes={
            str(REPO / "src"): {"bind": "/app/src", "mode": "ro"},
            str(out): {"bind": "/build", "mode": "rw"},
        },
    )
    log_path = layout.logs / "train-container.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL)
    try:
        with open(log_path, "w", encoding="utf-8") as sink:
            for raw in container.logs(stream=True, follow=True):
                text = raw.decode("utf-8", "replace")
                sink.write(text)
                for line in text.splitlines():
                    tail.append(line)
                    log.info("[container] %s", line)
        code = container.wait()["StatusCode"]
    finally:
        container.remove(force=True)
    if code != 0:
        raise ContainerError(
            f"the training container exited with code {code}. Last lines:\n"
            f"{_lines(tail)}\nFull log: {log_path}",
            code,
        )


def _lines(lines: deque[str]) -> str:
    return "\n".join(f"  | {line}" for line in lines) or "  | (no output)"
