"""A Docker-compatible container engine on a Linux host without Docker, via Podman.

Used by CI and by developers whose machines have no Docker engine. Run as root
on Debian:

    python scripts/podman_engine.py setup     # packages, config, base image
    python scripts/podman_engine.py start --socket /tmp/podman.sock --pidfile P
    export DOCKER_HOST=unix:///tmp/podman.sock
    ...
    python scripts/podman_engine.py stop --pidfile P

``setup`` makes a Debian bookworm base image with debootstrap, because no image
registry is reachable from our machines; pass it to ``invoke image`` with
``--base-image localhost/coursedlc-base:bookworm``. The settings below are the
ones that work on these hosts: runc (crun fails on their cgroup layout), the vfs
storage driver, cgroupfs, file events, host networking and explicit ulimits
(the defaults are refused).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ["podman", "runc", "debootstrap", "uidmap", "conmon"]
BASE_IMAGE = "localhost/coursedlc-base:bookworm"
CONTAINERS_CONF = """\
[containers]
netns="host"
default_ulimits=["nofile=20000:20000","nproc=32768:32768"]

[engine]
cgroup_manager="cgroupfs"
events_logger="file"
runtime="runc"
"""
STORAGE_CONF = """\
[storage]
driver="vfs"
runroot="/run/containers/storage"
graphroot="/var/lib/containers/storage"
"""


def run(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    """Echo and run a command; stop on failure."""
    print("$", " ".join(argv), flush=True)
    return subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def setup() -> None:
    """Install Podman, configure it for this host, make the base image."""
    missing = [p for p in PACKAGES if shutil.which(p) is None and p != "uidmap"]
    if missing or shutil.which("newuidmap") is None:
        run("apt-get", "update", "-qq")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "install", "-y", "-qq", *PACKAGES, env=env)
    conf = Path("/etc/containers")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "containers.conf").write_text(CONTAINERS_CONF)
    (conf / "storage.conf").write_text(STORAGE_CONF)

    present = (
        subprocess.run(
            ["podman", "image", "exists", BASE_IMAGE], check=False
        ).returncode
        == 0
    )
    if present:
        print(f"{BASE_IMAGE} exists")
        return
    with tempfile.TemporaryDirectory(prefix="coursedlc-rootfs-") as rootfs:
        run(
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv",
            "bookworm",
            rootfs,
            stdout=subprocess.DEVNULL,
        )
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run("podman", "import", "-", BASE_IMAGE, stdin=tar.stdout)
        tar.wait()


def start(socket: Path, pidfile: Path) -> None:
    """Start the Docker-compatible API service in the background."""
    socket.unlink(missing_ok=True)
    log = open(pidfile.with_suffix(".log"), "ab")  # noqa: SIM115 - kept by the child
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    pidfile.write_text(str(service.pid))
    for _ in range(100):
        if socket.exists():
            print(f"podman service pid {service.pid}; DOCKER_HOST=unix://{socket}")
            return
        time.sleep(0.1)
    service.kill()
    sys.exit(f"podman service did not create {socket}; see {log.name}")


def stop(pidfile: Path) -> None:
    """Stop the service started by ``start``, by its PID."""
    if not pidfile.exists():
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
        print(f"stopped podman service pid {pid}")
    except ProcessLookupError:
        print(f"podman service pid {pid} had already stopped")
    pidfile.unlink()


def main() -> None:
    """Parse the sub-command and run it."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="install and configure Podman, make the base image")
    for name in ("start", "stop"):
        cmd = sub.add_parser(name, help=f"{name} the API service")
        cmd.add_argument("--pidfile", type=Path, required=True, help="PID file")
        if name == "start":
            cmd.add_argument("--socket", type=Path, required=True, help="socket path")
    args = p.parse_args()
    if args.command == "setup":
        setup()
    elif args.command == "start":
        start(args.socket, args.pidfile)
    else:
        stop(args.pidfile)


if __name__ == "__main__":
    main()
