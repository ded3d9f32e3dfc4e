"""A Kubernetes node pulling one image in a rollout (the `node-storm` scenario of loadtests/run).

Each `NodeUser` is one node with a source address of its own on the loopback (127.0.0.2, .3, …:
the client socket is bound to it), so the gateway's per-client limits count each node apart, as
they would in a cluster. All nodes start together once Locust has spawned them all, and each
pulls the image once as containerd does: HEAD the tag (a 401 challenge: a token from the realm
with Basic credentials, LOADTEST_BASIC, or none when the registry answers anonymously), GET the
index by digest, pick linux/amd64, GET that manifest, GET the config, then the layers three at a
time (containerd's default `max_concurrent_downloads`), every body streamed and checked against
the image's description (size and xxh3-128). A 429 fails the node, as it fails containerd.
When the last node is done, Locust stops.

Environment: LOADTEST_IMAGE (the JSON `seed.push_node_image` returned), LOADTEST_NODES (file to
write each node's record to), LOADTEST_BASIC (user:password for the token realm).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
from collections import Counter
from itertools import count
from typing import Any

import gevent
import gevent.event
import gevent.pool
import xxhash
from locust import HttpUser, constant, events, task
from requests.adapters import HTTPAdapter
from seed import INDEX, MANIFEST, PLATFORM

ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        MANIFEST,
        INDEX,
        "*/*",
    ]
)
LAYERS_AT_ONCE = 3  # containerd's max_concurrent_downloads
READ = 1 << 20
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')

_started = gevent.event.Event()  # every node spawned: go
_addresses = count()
_lock = threading.Lock()
NODES: list[dict[str, Any]] = []  # one record per node that finished (or failed)


def node_address(index: int) -> str:
    """127.0.0.2, 127.0.0.3, … skipping .0, .1 and .255 of each /24."""
    block, offset = divmod(index, 253)
    return str(ipaddress.IPv4Address("127.0.0.0") + block * 256 + offset + 2)


class SourceAddressAdapter(HTTPAdapter):
    """Connections from one local address (urllib3's `source_address`)."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


class NodeFailed(Exception):
    pass


@events.spawning_complete.add_listener
def _go(user_count: int, **_: Any) -> None:
    _started.set()


@events.quitting.add_listener
def _write_nodes(environment: Any, **_: Any) -> None:
    path = os.environ.get("LOADTEST_NODES")
    if path:
        with open(path, "w") as out:
            json.dump(NODES, out)


class NodeUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.image = json.loads(os.environ["LOADTEST_IMAGE"])
        self.address = node_address(next(_addresses))
        adapter = SourceAddressAdapter(self.address, pool_connections=1, pool_maxsize=LAYERS_AT_ONCE + 1)
        self.client.mount("http://", adapter)
        self.statuses: Counter[int] = Counter()
        self.bearer: str | None = None
        self.done = False

    @task
    def pull(self) -> None:
        if self.done:
            gevent.sleep(1)
            return
        _started.wait()
        record: dict[str, Any] = {"address": self.address, "start": time.time()}
        try:
            record["bytes"] = self._pull()
            record["ok"] = True
        except Exception as exc:  # the node's pull failed: recorded, never raised into Locust
            record["ok"] = False
            record["error"] = f"{type(exc).__name__}: {exc}"[:300]
        record["end"] = time.time()
        record["statuses"] = {str(status): n for status, n in self.statuses.items()}
        self.done = True
        self.environment.events.request.fire(
            request_type="NODE",
            name="pull image",
            response_time=1000 * (record["end"] - record["start"]),
            response_length=record.get("bytes", 0),
            exception=None if record["ok"] else NodeFailed(record["error"]),
            context={},
        )
        with _lock:
            NODES.append(record)
            last = len(NODES) == self.environment.runner.user_count
        if last:
            gevent.spawn(self.environment.runner.quit)

    def _pull(self) -> int:
        repository, tag = self.image["repository"], self.image["tag"]
        head = self._call("HEAD", f"/v2/{repository}/manifests/{tag}", "HEAD manifest (tag)")
        index_digest = head.headers["Docker-Content-Digest"]
        index = self._call("GET", f"/v2/{repository}/manifests/{index_digest}", "GET index").json()
        wanted = next(
            entry
            for entry in index["manifests"]
            if {k: entry.get("platform", {}).get(k) for k in PLATFORM} == PLATFORM
        )
        manifest = self._call("GET", f"/v2/{repository}/manifests/{wanted['digest']}", "GET manifest").json()
        received = self._blob(repository, manifest["config"]["digest"], "GET config")
        pool = gevent.pool.Pool(LAYERS_AT_ONCE)
        layers = [
            pool.spawn(self._blob, repository, layer["digest"], "GET layer") for layer in manifest["layers"]
        ]
        pool.join()
        for layer in layers:
            if layer.exception is not None:
                raise layer.exception
            received += layer.value
        return received

    def _blob(self, repository: str, digest: str, name: str) -> int:
        expected = self.image["blobs"][digest]
        response = self._call("GET", f"/v2/{repository}/blobs/{digest}", name, stream=True)
        hasher = xxhash.xxh3_128()
        received = 0
        try:
            for piece in response.iter_content(READ):
                received += len(piece)
                hasher.update(piece)
        finally:
            response.close()
        if received != expected["size"]:
            raise NodeFailed(f"{digest}: {received} bytes of {expected['size']}")
        if hasher.hexdigest() != expected["xxh3"]:
            raise NodeFailed(f"{digest}: other bytes than the blob's")
        return received

    def _call(self, method: str, path: str, name: str, stream: bool = False) -> Any:
        """One request as containerd makes it: on a 401, a token from the challenge's realm, then
        the same request again with it (kept for the rest of the pull)."""
        for _ in range(2):
            headers = {"Accept": ACCEPT}
            if self.bearer:
                headers["Authorization"] = f"Bearer {self.bearer}"
            response = self.client.request(
                method, path, headers=headers, name=name, stream=stream, catch_response=True
            )
            with response:
                self.statuses[response.status_code] += 1
                if response.status_code == 401 and self.bearer is None:
                    response.success()  # the challenge: expected once
                    self.bearer = self._token(response.headers.get("WWW-Authenticate", ""))
                    continue
                if not 200 <= response.status_code < 300:
                    response.failure(f"{response.status_code}")
                    why = response.text[:200] if response.status_code else repr(response.error)[:200]
                    raise NodeFailed(f"{method} {path}: {response.status_code} {why}")
            return response
        raise NodeFailed(f"{method} {path}: 401 with a token")

    def _token(self, challenge: str) -> str:
        if not challenge.lower().startswith("bearer "):
            raise NodeFailed(f"no bearer challenge: {challenge!r}")
        fields = dict(_CHALLENGE.findall(challenge))
        realm = fields.pop("realm")
        basic = os.environ.get("LOADTEST_BASIC")
        auth = tuple(basic.split(":", 1)) if basic else None
        response = self.client.get(realm, params=fields, auth=auth, name="GET token", catch_response=True)
        with response:
            self.statuses[response.status_code] += 1
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                raise NodeFailed(f"token: {response.status_code} {response.text[:200]}")
            answer = response.json()
        return str(answer.get("token") or answer["access_token"])
