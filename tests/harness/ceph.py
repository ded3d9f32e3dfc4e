"""A throwaway Ceph (mon + OSD + radosgw on free loopback ports) run by tests/services/ceph.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .processes import ServiceError, free_port

CEPH_SH = Path(__file__).resolve().parents[1] / "services" / "ceph.sh"
PACKAGES = "ceph-mon ceph-osd radosgw ceph-common curl"
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "rados", "monmaptool", "curl")


class CephCluster:
    """One instance of `ceph.sh` under `workdir`; `options` are its environment (OSD_STORE,
    MEMSTORE_BYTES). `up()` returns what it exports: S3_ENDPOINT_URL, AWS_*, CEPH_CONF,
    CEPH_KMS_KEY_ID (the SSE-KMS key), CEPH_START_SECONDS."""

    def __init__(self, workdir: Path, **options: str) -> None:
        missing = [name for name in BINARIES if shutil.which(name) is None]
        if missing:
            raise ServiceError(
                f"Ceph is not installed (missing {', '.join(missing)}): apt-get install {PACKAGES} "
                "(or bash tests/services/install.sh)"
            )
        self.env = {
            **os.environ,
            "CEPH_DIR": str(workdir),
            "RGW_PORT": str(free_port()),
            "MON_PORT": str(free_port()),
            "MON_V1_PORT": str(free_port()),
            "OSD_STORE": os.environ.get("OSD_STORE", "memstore"),
            **options,
        }
        self.exported: dict[str, str] = {}

    def up(self) -> dict[str, str]:
        result = subprocess.run(
            ["bash", str(CEPH_SH), "up"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(f"Ceph did not start:\n{result.stderr[-3000:]}")
        self.exported = dict(
            line.removeprefix("export ").split("=", 1)
            for line in result.stdout.splitlines()
            if line.startswith("export ")
        )
        return self.exported

    def admin(self, *args: str) -> None:
        """`radosgw-admin` on this cluster."""
        subprocess.run(
            ["radosgw-admin", "-c", self.exported["CEPH_CONF"], *args],
            capture_output=True,
            timeout=600,
            check=False,
        )

    def down(self) -> None:
        subprocess.run(
            ["bash", str(CEPH_SH), "down"], env=self.env, capture_output=True, timeout=300, check=False
        )
