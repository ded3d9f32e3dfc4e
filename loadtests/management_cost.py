"""What a management API request costs: the gateway's CPU time, this checkout against another.

    git archive <rev> | tar -x -C /tmp/ocigate-base      # the code to compare against
    .venv/bin/python loadtests/management_cost.py /tmp/ocigate-base [--requests 200] [--repeat 3]

Starts a gateway of each checkout (auth off: the cost of the API, not of a password hash), gives
both the same 100 registries and a token, then sends each kind of request `--requests` times to
one gateway and then the other, alternating the order in every repetition, and prints each
side's CPU time per request (user + system, which other load on a shared machine barely moves)
and the median of the paired ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from limiter_overhead import cpu_seconds  # noqa: E402
from services import OFF, Gateway, running  # noqa: E402

SCOPES = [{"name": "*", "type": "repository", "actions": ["pull"]}]
INVALID = {
    "name": "bench-x",
    "location": "local",
    "apiSubnetAllowList": ["10.0.0.1/8"],
    "garbageCollectionSchedule": {"days": ["mon", "mon"], "time": "25:00"},
}
SETTINGS = {
    "apiSubnetAllowList": ["10.0.0.0/8", "192.0.2.0/24"],
    "garbageCollectionSchedule": {"days": ["sun", "mon"], "time": "03:30"},
}


def _prepare(url: str) -> dict[str, Callable[[requests.Session], None]]:
    session = requests.Session()
    for index in range(99):  # and the default registry: a full page
        body = {"name": f"bench-{index:03d}", "location": "local", **SETTINGS}
        session.post(f"{url}/api/registries", json=body).raise_for_status()
    registry = url + session.get(f"{url}/api/registries?limit=1").json()["items"][0]["href"]
    session.post(f"{registry}/tokens", json={"name": "t", "scopes": SCOPES}).raise_for_status()

    def refused(s: requests.Session) -> None:
        assert s.post(f"{url}/api/registries", json=INVALID).status_code == 400

    return {
        "list 100 registries": lambda s: s.get(f"{url}/api/registries?limit=100").raise_for_status(),
        "get a registry": lambda s: s.get(registry).raise_for_status(),
        "patch a registry": lambda s: s.patch(registry, json=SETTINGS).raise_for_status(),
        "refuse a bad body": refused,
        "list tokens": lambda s: s.get(f"{registry}/tokens").raise_for_status(),
    }


def _cost(gateway: Gateway, send: Callable[[requests.Session], None], count: int) -> float:
    """CPU microseconds per request."""
    session = requests.Session()
    send(session)  # a connection, warm caches
    pid = gateway.popen.pid  # type: ignore[union-attr]
    before = cpu_seconds(pid)
    for _ in range(count):
        send(session)
    return (cpu_seconds(pid) - before) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (a directory)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with running("ocigate-management-") as services:
        gateways = {
            "this": services.gateway("this", OFF),
            "baseline": services.gateway("baseline", OFF, source=args.baseline.resolve()),
        }
        kinds = {name: _prepare(gateway.url) for name, gateway in gateways.items()}
        costs = {(side, kind): [] for side in gateways for kind in kinds["this"]}
        for repetition in range(args.repeat):
            order = list(gateways) if repetition % 2 == 0 else list(reversed(gateways))
            for kind in kinds["this"]:
                for side in order:
                    costs[side, kind].append(_cost(gateways[side], kinds[side][kind], args.requests))
    print(f"gateway CPU per request, {args.repeat} x {args.requests} requests each")
    print("  request                 this (us)   baseline (us)   paired ratio this/baseline")
    for kind in kinds["this"]:
        mine, theirs = costs["this", kind], costs["baseline", kind]
        ratio = statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
        print(f"  {kind:22} {statistics.median(mine):10.0f} {statistics.median(theirs):15.0f} {ratio:20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
