"""Password guessing against pulls: one client guesses passwords at full speed while another
pulls a manifest at a steady rate; the puller's p99 latency against its own quiet p99, measured
in the same run.

    .venv/bin/python loadtests/login_guessing.py [--repeat 3] [--seconds 20] [--guessers 8]

Per variant, one gateway (auth on, embedded default, limits at their defaults unless said):
  defaults        failed-login throttle, rate limit and password pool as shipped
  no-throttles    OCIGATE_LOGIN_FAILURES=0, OCIGATE_LIMIT_RPS=0: every guess costs a hash; only
                  the bounded password pool stands between the guesses and the pulls
  wide-pool       as no-throttles with OCIGATE_PASSWORD_THREADS=6, about what hashing on the
                  default thread pool gave before (min(32, CPUs + 4))
Each repetition: quiet (puller alone), guessing (puller + guesser), quiet again; the ratio is
the guessing phase's p99 over the p99 of both quiet phases. The puller (127.0.0.1) sends
`GET /v2/<repo>/manifests/v1` with a bearer token 40 times a second, open loop (latency counted
from the planned send time, so a stall shows in full); the guesser (127.0.0.2, a client of its
own to the limits) sends `GET /token` with wrong admin passwords on `--guessers` connections as
fast as answers come. Also printed: the guesser's answers and the hashes the server computed,
and the time of an unknown user's login against a known user's wrong one (the timing oracle).
Each role is a process of its own; nothing is pinned (the password pool needs a core).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from seed import REPOSITORY, seed_image  # noqa: E402
from services import Services, running  # noqa: E402

ADMIN, PASSWORD = "admin", "bench-admin-password"
PULL_RATE = 40.0  # requests/s: under the default limit of 60 per client
VARIANTS = {
    "defaults": {},
    "no-throttles": {"OCIGATE_LOGIN_FAILURES": "0", "OCIGATE_LIMIT_RPS": "0"},
    "wide-pool": {"OCIGATE_LOGIN_FAILURES": "0", "OCIGATE_LIMIT_RPS": "0", "OCIGATE_PASSWORD_THREADS": "6"},
}


# --- the two clients, each run as `login_guessing.py --role …` in a process of its own --------


async def pull(url: str, token: str, seconds: float) -> list[float]:
    """Latencies (s) of paced manifest GETs, each from its planned send time."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.oci.image.manifest.v1+json"}
    latencies = []
    async with aiohttp.ClientSession(headers=headers) as session:
        started = time.perf_counter()
        for n in range(int(seconds * PULL_RATE)):
            planned = started + n / PULL_RATE
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with session.get(f"{url}/v2/{REPOSITORY}/manifests/v1") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"pull answered {response.status}")
            latencies.append(time.perf_counter() - planned)
    return latencies


async def guess(url: str, seconds: float, connections: int) -> dict[str, int]:
    """Wrong admin passwords at full speed from 127.0.0.2; the answers by status."""
    statuses: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=connections, local_addr=("127.0.0.2", 0))
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(n: int) -> None:
            attempt = 0
            while time.monotonic() < deadline:
                attempt += 1
                credentials = base64.b64encode(f"{ADMIN}:guess-{n}-{attempt}".encode()).decode()
                try:
                    async with session.get(
                        f"{url}/token", headers={"Authorization": f"Basic {credentials}"}
                    ) as response:
                        await response.read()
                        key = str(response.status)
                except aiohttp.ClientError:
                    key = "error"
                statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(worker(n) for n in range(connections)))
    return statuses


def client_role(args: argparse.Namespace) -> int:
    if args.role == "pull":
        result: object = asyncio.run(pull(args.url, args.token, args.seconds))
    else:
        result = asyncio.run(guess(args.url, args.seconds, args.guessers))
    print(json.dumps(result))
    return 0


def spawn(role: str, url: str, seconds: float, **extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, __file__, "--role", role, "--url", url, "--seconds", str(seconds)]
    for name, value in extra.items():
        argv += [f"--{name}", value]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen[str]) -> object:
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"{process.args} failed")
    return json.loads(out)


# --- the run --------------------------------------------------------------------------------


def p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


def password_checks(url: str) -> int:
    text = requests.get(f"{url}/metrics", timeout=30).text
    match = re.search(r"^ocigate_auth_password_checks_total (\d+)$", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def login_time(url: str, username: str, samples: int = 15) -> float:
    """Median seconds of a failed `/token` login as `username` (from an address of its own)."""
    session = requests.Session()
    times = []
    for n in range(samples):
        started = time.perf_counter()
        session.get(f"{url}/token", auth=(username, f"wrong-{n}"), timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class Outcome:
    ratios: list[float] = field(default_factory=list)  # guessing p99 / quiet p99, per repetition
    rows: list[str] = field(default_factory=list)
    unknown_user: float = 0.0  # median seconds of a failed login (0: not measured)
    known_user: float = 0.0


def run_variant(services: Services, name: str, env: dict[str, str], args: argparse.Namespace) -> Outcome:
    gateway = services.gateway(
        name,
        {"OCIGATE_AUTH": "token", "OCIGATE_ADMIN_PASSWORD": PASSWORD, "OCIGATE_LOG_LEVEL": "warning", **env},
    )
    os.environ["LOADTEST_BASIC"] = f"{ADMIN}:{PASSWORD}"
    seed_image(gateway.url)
    token = requests.get(
        f"{gateway.url}/token",
        params={"scope": f"repository:{REPOSITORY}:pull"},
        auth=(ADMIN, PASSWORD),
        timeout=30,
    ).json()["token"]
    outcome = Outcome()
    for _ in range(args.repeat):
        quiet = result_of(spawn("pull", gateway.url, args.seconds, token=token))
        checks = password_checks(gateway.url)
        guesser = spawn("guess", gateway.url, args.seconds + 2, guessers=str(args.guessers))
        time.sleep(1)  # the guesser at full speed before the puller starts
        busy = result_of(spawn("pull", gateway.url, args.seconds, token=token))
        answers = result_of(guesser)
        hashes = password_checks(gateway.url) - checks
        quiet_again = result_of(spawn("pull", gateway.url, args.seconds, token=token))
        assert isinstance(quiet, list)
        assert isinstance(busy, list)
        assert isinstance(quiet_again, list)
        assert isinstance(answers, dict)
        quiet_p99, busy_p99 = p99(quiet + quiet_again), p99(busy)
        outcome.ratios.append(busy_p99 / quiet_p99)
        guesses = sum(answers.values())
        quiet_p50, busy_p50 = statistics.median(quiet + quiet_again), statistics.median(busy)
        outcome.rows.append(
            f"  p50 {quiet_p50 * 1000:5.2f} / {busy_p50 * 1000:5.2f} ms"
            f"  quiet p99 {quiet_p99 * 1000:6.2f} ms  guessing p99 {busy_p99 * 1000:6.2f} ms"
            f"  ({busy_p99 / quiet_p99:.2f}x)  guesses {guesses / (args.seconds + 2):7.0f}/s"
            f"  answers {json.dumps(answers, sort_keys=True)}  hashes {hashes}"
        )
    if env.get("OCIGATE_LOGIN_FAILURES") == "0":  # unthrottled: every attempt is checked
        outcome.unknown_user = login_time(gateway.url, "nobody-by-that-name")
        outcome.known_user = login_time(gateway.url, ADMIN)
    gateway.stop()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--role", choices=["pull", "guess"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--guessers", type=int, default=8, help="the guesser's connections")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    if args.role:
        return client_role(args)
    with running("ocigate-guessing-") as services:
        for name in args.variants.split(","):
            outcome = run_variant(services, name, VARIANTS[name], args)
            median = statistics.median(outcome.ratios)
            print(f"{name}: guessing p99 / quiet p99, median of {len(outcome.ratios)}: {median:.2f}x")
            print("\n".join(outcome.rows))
            if outcome.known_user:
                print(
                    f"  failed login, medians: unknown user {outcome.unknown_user * 1000:.1f} ms, "
                    f"known user {outcome.known_user * 1000:.1f} ms"
                )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
