"""`OCIGATE_LOG_FORMAT=json`: one JSON object per line, access lines with the request's fields;
`X-Request-Id` taken from the client when it is a plain token, made otherwise, and returned on
every response (streamed blobs and errors included); `OCIGATE_METRICS=off`."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.registry_client import RegistryClient, digest_of
from tests.servers import Gateway

from .metrics_scrape import scrape
from .raw_http import read_response

MADE_ID = re.compile(r"[0-9a-f]{12}-[0-9]+")


def log_entries(gateway: Gateway) -> list[dict[str, Any]]:
    entries = []
    for line in gateway.log().splitlines():
        entry = json.loads(line)  # every line, not only access lines
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"]), line
        entries.append(entry)
    return entries


def test_json_lines_and_request_ids(tmp_path: Path) -> None:
    env = {"OCIGATE_LOG_FORMAT": "json", "OCIGATE_ACCESS_LOG": "true", "OCIGATE_METRICS": "off"}
    gateway = Gateway(tmp_path / "data", env=env).start()
    try:
        client = RegistryClient(gateway.url)
        given = f"ci-run.{uuid.uuid4().hex}:7"
        kept = client.request("GET", "/v2/", headers={"X-Request-Id": given})
        assert kept.headers["X-Request-Id"] == given
        for bad in ("has space", "x" * 129, 'quote"', "semi;colon", ""):
            answered = client.request("GET", "/v2/", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
            assert MADE_ID.fullmatch(answered), (bad, answered)
        made = {client.request("GET", "/v2/").headers["X-Request-Id"] for _ in range(3)}
        assert len(made) == 3
        assert all(MADE_ID.fullmatch(made_id) for made_id in made)
        # a streamed blob (prepared by its handler) and an error carry it too
        blob = b"streamed " * 1000
        client.push_blob("logs/app", blob)
        streamed = client.request("GET", f"/v2/logs/app/blobs/{digest_of(blob)}")
        assert streamed.content == blob
        assert MADE_ID.fullmatch(streamed.headers["X-Request-Id"])
        missing = client.request("GET", "/v2/logs/app/manifests/nope", headers={"X-Request-Id": "e-1"})
        assert (missing.status_code, missing.headers["X-Request-Id"]) == (404, "e-1")
        scraped = scrape(gateway.url)
        assert "ocigate_http_requests_total" not in scraped.text  # OCIGATE_METRICS=off
        assert scraped.value("ocigate_store_up", store="metadata") == 1  # the rest stays
        assert requests.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
    finally:
        gateway.stop()

    entries = log_entries(gateway)
    assert any(e["logger"] == "ocigate" and e["message"].startswith("ocigate serving on") for e in entries)
    access = [e for e in entries if e["logger"] == "ocigate.access"]
    line = next(e for e in access if e.get("request_id") == given)
    assert line["level"] == "info"
    assert line["registry"] == "default"
    assert line["client"] == "127.0.0.1"
    assert (line["method"], line["path"], line["route"], line["status"]) == ("GET", "/v2/", "/v2/", 200)
    assert 0 <= line["duration"] < 30
    assert line["bytes_in"] == 0
    assert line["bytes_out"] > 0
    pushed = next(e for e in access if e["method"] == "POST")
    assert (pushed["route"], pushed["status"], pushed["bytes_in"]) == (
        "/v2/{name}/blobs/uploads/",
        201,
        len(blob),
    )
    error = next(e for e in access if e.get("request_id") == "e-1")
    assert (error["route"], error["status"]) == ("/v2/{name}/manifests/{reference}", 404)
    assert {e["request_id"] for e in access} >= made


def test_text_access_lines_end_with_the_request_id(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path / "data", env={"OCIGATE_ACCESS_LOG": "true"}).start()
    try:
        RegistryClient(gateway.url).request("GET", "/v2/", headers={"X-Request-Id": "text-1"})
    finally:
        gateway.stop()
    assert re.search(
        r'^\S+ \S+ INFO ocigate\.access: 127\.0\.0\.1 "GET /v2/ HTTP/1\.1" 200 .* text-1$',
        gateway.log(),
        re.M,
    )


def test_a_malformed_request_gets_a_request_id_on_its_answer_warning_and_access_line(tmp_path: Path) -> None:
    """The parser found no headers: a made id, even where the broken request named one."""
    env = {"OCIGATE_LOG_FORMAT": "json", "OCIGATE_ACCESS_LOG": "true"}
    gateway = Gateway(tmp_path / "data", env=env).start()
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Request-Id: mine\r\nBad Header: y\r\n\r\n")
            status, headers, body = read_response(sock)
        assert status == 400
        assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
        made = headers["x-request-id"]
        assert MADE_ID.fullmatch(made), made
    finally:
        gateway.stop()
    entries = log_entries(gateway)
    assert [e for e in entries if e["level"] == "error"] == []  # the access line once raised here
    warning = next(e for e in entries if "malformed HTTP request" in e["message"])
    assert (warning["level"], warning["request_id"]) == ("warning", made)
    access = [e for e in entries if e["logger"] == "ocigate.access" and e.get("request_id") == made]
    assert [(e["status"], e["route"]) for e in access] == [(400, "unmatched")]
