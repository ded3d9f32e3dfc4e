"""ocigate load test users: a puller, a pusher and a limit prober.

Run through `loadtests/run` (which starts a gateway, picks the users and checks the counts), or by
hand: `locust -f loadtests/locustfile.py --host http://127.0.0.1:5000 PullerUser PusherUser`.

Environment:
  LOADTEST_REPOSITORY   repository the puller reads and the pusher writes (default load/app)
  LOADTEST_LAYER_KB     size of each of the puller's two layers (default 256)
  LOADTEST_PUSH_KB      size of each blob the pusher uploads (default 256)
  LOADTEST_TARGETS      space-separated base URLs the prober spreads over (default: the host)
  LOADTEST_COUNTS       file to write the counters to when the run stops (JSON)
  LOADTEST_BASIC        user:password for Basic auth (a gateway with auth on; `loadtests/run`
                        starts its own with OCIGATE_AUTH=none)
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

from locust import FastHttpUser, constant, events, task
from node_user import NodeUser  # noqa: F401  (the node-storm scenario's user)
from seed import CONFIG, LAYER, MANIFEST, REPOSITORY, digest_of, pattern, seed_image

# containerd's Accept for a manifest HEAD/GET
ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "*/*",
    ]
)
PUSH_BYTES = int(os.environ.get("LOADTEST_PUSH_KB", "256")) * 1024


class Counts:
    """Every response by status, bytes moved, and what the prober saw. Locust's own CSV has the
    timings; these are the counts the run's checks are made of."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, int] = {}
        self.bytes_down = 0
        self.bytes_up = 0
        self.probe_admitted = 0
        self.probe_limited = 0
        self.probe_other = 0
        self.bad_429: list[str] = []  # 429s without Retry-After or without the body code
        self.errors: list[str] = []  # the first failed requests, with their bodies
        # The server admitted each request somewhere between its start and its end here, so the
        # outer window (first start → last end) bounds the server's from above, the inner one
        # (first end → last start) from below: the upper check uses the one, the lower the other.
        self.probe_first = (0.0, 0.0)  # (start, end) of the first admitted request
        self.probe_last = (0.0, 0.0)  # of the last
        self.started = time.time()

    def as_dict(self) -> dict[str, Any]:
        return {
            "statuses": self.statuses,
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "probe_admitted": self.probe_admitted,
            "probe_limited": self.probe_limited,
            "probe_other": self.probe_other,
            "probe_window": max(self.probe_last[1] - self.probe_first[0], 0.0),
            "probe_inner_window": max(self.probe_last[0] - self.probe_first[1], 0.0),
            "bad_429": self.bad_429[:20],
            "bad_429_count": len(self.bad_429),
            "errors": self.errors,
            "elapsed": time.time() - self.started,
        }


COUNTS = Counts()


@events.request.add_listener
def _count(
    name: str = "", response: Any = None, response_length: int = 0, exception: Any = None, **_: Any
) -> None:
    status = str(getattr(response, "status_code", 0) or 0) if response is not None else "error"
    with COUNTS.lock:
        COUNTS.statuses[status] = COUNTS.statuses.get(status, 0) + 1
        COUNTS.bytes_down += response_length or 0
        if exception is not None and status != "429" and len(COUNTS.errors) < 20:
            body = getattr(response, "text", "") or ""
            COUNTS.errors.append(f"{name}: {status} {body[:200] or exception}")


@events.test_start.add_listener
def _seed(environment: Any, **_: Any) -> None:
    """Push the image the puller reads (idempotent: same bytes, same digests)."""
    COUNTS.started = time.time()
    user_classes = {cls.__name__ for cls in environment.user_classes}
    if "PullerUser" in user_classes and environment.host:
        seed_image(environment.host)


@events.quitting.add_listener
def _write_counts(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOADTEST_COUNTS")
    if path:
        with open(path, "w") as out:
            json.dump(COUNTS.as_dict(), out, indent=1)


def _credentials(user: FastHttpUser) -> None:
    """LOADTEST_BASIC=user:password: Basic auth on every request (a robot token's name and
    password), for runs against a gateway with auth on."""
    basic = os.environ.get("LOADTEST_BASIC")
    if basic:
        name, _, password = basic.partition(":")
        user.client.auth_header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


class PullerUser(FastHttpUser):
    """Pulls as containerd does: HEAD the tag, GET the manifest by digest, then config and layers."""

    wait_time = constant(0)
    weight = 3

    def on_start(self) -> None:
        _credentials(self)

    @task
    def pull(self) -> None:
        head = self.client.head(
            f"/v2/{REPOSITORY}/manifests/v1", headers={"Accept": ACCEPT}, name="HEAD manifest (tag)"
        )
        digest = head.headers.get("Docker-Content-Digest") if head.status_code == 200 else None
        if not digest:
            return
        manifest = self.client.get(
            f"/v2/{REPOSITORY}/manifests/{digest}", headers={"Accept": ACCEPT}, name="GET manifest (digest)"
        )
        if manifest.status_code != 200:
            return
        document = json.loads(manifest.content)
        self.client.get(f"/v2/{REPOSITORY}/blobs/{document['config']['digest']}", name="GET config")
        for layer in document["layers"]:
            self.client.get(f"/v2/{REPOSITORY}/blobs/{layer['digest']}", name="GET layer")


class PusherUser(FastHttpUser):
    """Pushes unique blobs monolithically (POST, then one PUT with the body, as containerd) and in
    chunks (POST, PATCHes with Content-Range, PUT ?digest=, as oras/docker), then a manifest."""

    wait_time = constant(0)
    weight = 1

    def on_start(self) -> None:
        _credentials(self)
        self.sequence = 0

    def _blob(self) -> bytes:
        self.sequence += 1
        return pattern(PUSH_BYTES, f"{id(self)}-{self.sequence}-{time.time_ns()}".encode())

    def _start_upload(self) -> str | None:
        response = self.client.post(f"/v2/{REPOSITORY}/blobs/uploads/", name="POST upload")
        return response.headers.get("Location") if response.status_code == 202 else None

    @task
    def monolithic(self) -> None:
        blob = self._blob()
        location = self._start_upload()
        if location is None:
            return
        separator = "&" if "?" in location else "?"
        self.client.put(
            f"{location}{separator}digest={digest_of(blob)}",
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
            name="PUT upload (monolithic)",
        )
        self._count_up(len(blob))
        self._manifest(blob)

    @task
    def chunked(self) -> None:
        blob = self._blob()
        location = self._start_upload()
        if location is None:
            return
        half = len(blob) // 2
        for start, end in ((0, half), (half, len(blob))):
            response = self.client.patch(
                location,
                data=blob[start:end],
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end - 1}"},
                name="PATCH upload (chunk)",
            )
            if response.status_code != 202:
                return
            location = response.headers.get("Location", location)
        separator = "&" if "?" in location else "?"
        self.client.put(f"{location}{separator}digest={digest_of(blob)}", name="PUT upload (close)")
        self._count_up(len(blob))
        self._manifest(blob)

    def _manifest(self, layer: bytes) -> None:
        config = b"{}"
        self.client.post(
            f"/v2/{REPOSITORY}/blobs/uploads/?digest={digest_of(config)}",
            data=config,
            name="POST upload (config)",
        )
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
                "layers": [{"mediaType": LAYER, "digest": digest_of(layer), "size": len(layer)}],
            }
        ).encode()
        self.client.put(
            f"/v2/{REPOSITORY}/manifests/push-{self.sequence % 8}",
            data=manifest,
            headers={"Content-Type": MANIFEST},
            name="PUT manifest",
        )

    @staticmethod
    def _count_up(size: int) -> None:
        with COUNTS.lock:
            COUNTS.bytes_up += size


class ProbeUser(FastHttpUser):
    """Asks as fast as it can and checks every 429: `Retry-After` and the `TOOMANYREQUESTS` code.

    All probers come from one address, so together they are one client at saturation."""

    wait_time = constant(0)

    def on_start(self) -> None:
        _credentials(self)
        targets = os.environ.get("LOADTEST_TARGETS", "").split() or [self.host]
        self.targets = targets
        self.turn = hash(id(self))

    @task
    def probe(self) -> None:
        self.turn += 1
        base = self.targets[self.turn % len(self.targets)]
        started = time.time()
        with self.client.get(f"{base}/v2/", name="probe", catch_response=True) as response:
            ended = time.time()
            if response.status_code == 429:
                problem = _check_429(response)
                response.success()
                with COUNTS.lock:
                    COUNTS.probe_limited += 1
                    if problem:
                        COUNTS.bad_429.append(problem)
            else:
                response.success()  # a 401 from a gateway with auth on passed the limiter too
                with COUNTS.lock:
                    if 0 < response.status_code < 500:
                        COUNTS.probe_admitted += 1
                        if not COUNTS.probe_first[0] or started < COUNTS.probe_first[0]:
                            COUNTS.probe_first = (started, ended)
                        if started > COUNTS.probe_last[0]:
                            COUNTS.probe_last = (started, ended)
                    else:
                        COUNTS.probe_other += 1


def _check_429(response: Any) -> str | None:
    retry_after = response.headers.get("Retry-After", "")
    if not retry_after.isdigit() or int(retry_after) < 1:
        return f"Retry-After {retry_after!r}"
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        if header not in response.headers:
            return f"no {header}"
    try:
        codes = [error["code"] for error in json.loads(response.content)["errors"]]
    except (ValueError, KeyError, TypeError):
        return "body is not an OCI error"
    return None if codes == ["TOOMANYREQUESTS"] else f"body codes {codes}"
