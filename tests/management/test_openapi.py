"""The OpenAPI document is valid, and the server does what it says: a schemathesis run finds no
5xx, no response that contradicts the document (status, headers, content type, body schema),
no input it forbids being accepted, and no undocumented method answered.

Schemathesis generates ids at random, which would only ever reach 404s; dictionaries point the
path parameters at real resources most of the time, and the deletes at resources of their own.

The suite's pass is the same every run: a fixed seed, deterministic generation and no example
database, so CI fails on a change, never on luck. To explore (new cases each run, as long as you
like), see the README: `OPENAPI_FUZZ_SEED=random OPENAPI_FUZZ_EXAMPLES=500`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests
from openapi_spec_validator import validate

from ocigate.gateway.management.routes import DOCUMENT
from tests.servers import ADMIN_PASSWORD, ADMIN_USER, Gateway

from .conftest import Api, v2_client

# positive_data_acceptance is left out: the document cannot say everything the server checks
# (an expiry at least an hour ahead, a name nobody has taken), so valid-looking input may be 400
CHECKS_EXCLUDED = "positive_data_acceptance"
MAX_EXAMPLES = os.environ.get("OPENAPI_FUZZ_EXAMPLES", "12")
# the suite sends the same cases every run (derandomized, a fixed seed); for a longer random run,
# OPENAPI_FUZZ_SEED=random with more examples (README, "Management API")
SEED = os.environ.get("OPENAPI_FUZZ_SEED", "1212")
TIMEOUT = 300 + 3 * int(MAX_EXAMPLES)  # seconds; a run takes about 1 s an example here


def _generation() -> list[str]:
    if SEED == "random":
        return ["--generation-database", "none"]
    return ["--generation-deterministic", "--seed", SEED]


def test_the_document_is_valid_openapi(api: Api) -> None:
    validate(DOCUMENT)
    served = api.get("/api/openapi.json")
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/json")
    assert served.json() == json.loads(json.dumps(DOCUMENT))


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    from ocigate.gateway.management.routes import ROUTES

    served = {(route.template, method.lower()) for route in ROUTES for method in route.operations}
    documented = {
        (path, method)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert served == documented


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _config(ids: dict[str, list[str]], doomed: dict[str, list[str]]) -> str:
    lines = []
    for name, values in {**ids, **{f"doomed_{k}": v for k, v in doomed.items()}}.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml_list(values)}", ""]
    lines += ["[parameters]"]
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = 0.85 }}' for name in ids]
    # deletes get resources of their own (a binding, not a fixed value: the stateful phase
    # must still delete what it has just created)
    for operation_id, parameter in (
        ("deleteRegistry", "id"),
        ("deleteToken", "tokenId"),
        ("deleteRepository", "repository"),
    ):
        binding = f'{{ dictionary = "doomed_{parameter}", probability = 0.85 }}'
        lines += ["", "[[operations]]", f'include-operation-id = "{operation_id}"']
        lines += [f'parameters = {{ "path.{parameter}" = {binding} }}']
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(api: Api, management_gateway: Gateway, tmp_path: Path) -> None:
    fuzzed = api.create_registry()
    token = api.create_token(fuzzed, name="kept")
    doomed_token = api.create_token(fuzzed, name="doomed")
    client = v2_client(management_gateway, fuzzed, (ADMIN_USER, ADMIN_PASSWORD))
    image = client.push_image("team/app", "v1")
    client.push_image("doomed/app", "v1")
    doomed_registry = api.create_registry()
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        _config(
            {
                "id": [fuzzed["id"]],
                "tokenId": [token["id"]],
                "repository": ["team/app"],
                "digest": [image.digest],
                "location": ["local"],
            },
            {"id": [doomed_registry["id"]], "tokenId": [doomed_token["id"]], "repository": ["doomed/app"]},
        )
    )
    url = management_gateway.url
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/api/openapi.json",
        "--url",
        url,
        "--auth",
        f"{ADMIN_USER}:{ADMIN_PASSWORD}",
        "--checks",
        "all",
        "--exclude-checks",
        CHECKS_EXCLUDED,
        "--max-examples",
        MAX_EXAMPLES,
        # health checks judge the generator, not the API: patterns (digests, names) that random
        # strings rarely meet make hypothesis filter much; the dictionaries supply real values
        "--suppress-health-check",
        "filter_too_much,too_slow",
        *_generation(),
        # every request carries the admin's credentials (--auth): generating the Authorization
        # header as a parameter only yields "missing header" negatives that --auth then fills
        # in, reported as schema-violating requests accepted (ST201). Requests without or with
        # bad credentials are still sent by the ignored_auth check (ST401).
        "--generation-with-security-parameters",
        "false",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    try:
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        output = result.stdout[-20000:] + result.stderr[-5000:]
        assert result.returncode == 0, output
        assert "Tested: 22" in result.stdout, output
    finally:
        api.delete(fuzzed["href"])
        api.delete(doomed_registry["href"])
    # the server survived it
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
