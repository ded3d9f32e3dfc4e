"""The image the puller reads: pushed once before a run (same bytes, same digests every time).

Kept apart from locustfile.py so that tools which must not import Locust (and gevent's monkey
patching) can seed a gateway too.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from typing import Any
from urllib.parse import urljoin

import requests
import xxhash

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


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    """An OCI image manifest of `config` and `layers`."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": digest_of(blob), "size": len(blob)} for blob in layers],
        }
    ).encode()


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
    put_manifest(session, base_url, REPOSITORY, "v1", image_manifest(config, layers), MANIFEST)


def put_manifest(
    session: requests.Session, base_url: str, repository: str, reference: str, body: bytes, media_type: str
) -> None:
    session.put(
        f"{base_url}/v2/{repository}/manifests/{reference}",
        data=body,
        headers={"Content-Type": media_type},
        timeout=60,
    ).raise_for_status()


# --- the node-storm image: a multi-platform index, as a rollout pulls it --------------------

INDEX = "application/vnd.oci.image.index.v1+json"
NODE_REPOSITORY = os.environ.get("LOADTEST_NODE_REPOSITORY", "storm/app")
NODE_TAG = "v1"
PLATFORM = {"architecture": "amd64", "os": "linux"}


def node_image_blobs(layers: int, layer_bytes: int, seed: str = "node-storm") -> list[bytes]:
    """The config and `layers` layers of random bytes (deterministic for `seed`; random so that
    nothing on the way can compress or deduplicate them), each a few odd bytes apart in size."""
    config = json.dumps({**PLATFORM, "rootfs": {"type": "layers"}, "seed": seed}).encode()
    return [config] + [
        random.Random(f"{seed}-{index}").randbytes(layer_bytes + 7 * index) for index in range(layers)
    ]


def push_node_image(
    base_url: str, blobs: list[bytes], basic: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Push `blobs` (config first) as one platform manifest under an index tagged `NODE_TAG`, by
    POST then PUT ?digest= (what every registry implements). Returns what a node must end up
    with: the image's description for the locustfile (LOADTEST_IMAGE): repository, tag, and for
    each blob its size and xxh3-128 (a full check of every body at little CPU)."""
    session = requests.Session()
    session.auth = basic
    for blob in blobs:
        if (
            session.head(f"{base_url}/v2/{NODE_REPOSITORY}/blobs/{digest_of(blob)}", timeout=60).status_code
            == 200
        ):
            continue
        started = session.post(f"{base_url}/v2/{NODE_REPOSITORY}/blobs/uploads/", timeout=60)
        started.raise_for_status()
        location = urljoin(base_url, started.headers["Location"])
        separator = "&" if "?" in location else "?"
        session.put(
            f"{location}{separator}digest={digest_of(blob)}",
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
            timeout=600,
        ).raise_for_status()
    config, layers = blobs[0], blobs[1:]
    manifest = image_manifest(config, layers)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [
                {
                    "mediaType": MANIFEST,
                    "digest": digest_of(manifest),
                    "size": len(manifest),
                    "platform": PLATFORM,
                },
                # another platform, never pulled here: nodes pick theirs, as containerd does
                {
                    "mediaType": MANIFEST,
                    "digest": digest_of(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "arm64", "os": "linux"},
                },
            ],
        }
    ).encode()
    put_manifest(session, base_url, NODE_REPOSITORY, digest_of(manifest), manifest, MANIFEST)
    put_manifest(session, base_url, NODE_REPOSITORY, NODE_TAG, index, INDEX)
    return {
        "repository": NODE_REPOSITORY,
        "tag": NODE_TAG,
        "blobs": {
            digest_of(blob): {"size": len(blob), "xxh3": xxhash.xxh3_128_hexdigest(blob)} for blob in blobs
        },
        "blob_bytes": sum(len(blob) for blob in blobs),
    }
