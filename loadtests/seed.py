"""The image the puller reads: pushed once before a run (same bytes, same digests every time).

Kept apart from locustfile.py so that tools which must not import Locust (and gevent's monkey
patching) can seed a gateway too.
"""

from __future__ import annotations

import hashlib
import json
import os

import requests

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REPOSITORY = os.environ.get("LOADTEST_REPOSITORY", "load/app")
LAYER_BYTES = int(os.environ.get("LOADTEST_LAYER_KB", "256")) * 1024


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def pattern(size: int, seed: bytes) -> bytes:
    block = hashlib.sha512(seed).digest()
    return (block * (size // len(block) + 1))[:size]


def seed_image(base_url: str) -> None:
    session = requests.Session()
    basic = os.environ.get("LOADTEST_BASIC")
    if basic:
        name, _, password = basic.partition(":")
        session.auth = (name, password)
    layers = [pattern(LAYER_BYTES, seed) for seed in (b"layer-0", b"layer-1")]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    for blob in (config, *layers):
        response = session.post(
            f"{base_url}/v2/{REPOSITORY}/blobs/uploads/",
            params={"digest": digest_of(blob)},
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
            timeout=60,
        )
        response.raise_for_status()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": digest_of(blob), "size": len(blob)} for blob in layers],
        }
    ).encode()
    session.put(
        f"{base_url}/v2/{REPOSITORY}/manifests/v1",
        data=manifest,
        headers={"Content-Type": MANIFEST},
        timeout=60,
    ).raise_for_status()
