"""`/api/audit`: who did what, when, from where; each account reads only its own trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import Api


def test_management_actions_are_audited(api: Api, other_api: Api) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    registry = api.create_registry()
    token = api.create_token(registry)
    api.patch(token["href"], {"status": "disabled"})
    api.patch(registry["href"], {"apiSubnetAllowList": ["192.0.2.0/24"]})
    api.delete(token["href"])
    api.delete(registry["href"])

    entries = api.get("/api/audit", params={"limit": 6}).json()["items"]
    actions = [(e["properties"]["action"], e["properties"]["target"]) for e in entries]
    registry_target = f"registries/{registry['id']}"
    token_target = f"{registry_target}/tokens/{token['id']}"
    assert actions == [
        ("registry.delete", registry_target),
        ("token.delete", token_target),
        ("registry.update", registry_target),
        ("token.update", token_target),
        ("token.create", token_target),
        ("registry.create", registry_target),
    ]
    for entry in entries:
        assert entry["type"] == "auditEntry"
        assert entry["properties"]["actor"] == "admin"
        assert entry["properties"]["address"] == "127.0.0.1"
        assert datetime.fromisoformat(entry["metadata"]["createdAt"]) >= started
        assert api.get(entry["href"]).json() == entry
    assert entries[-1]["properties"]["detail"] == {"name": registry["properties"]["name"]}
    assert "password" not in str(entries)

    # another account sees none of it
    theirs = other_api.get("/api/audit", params={"limit": 100}).json()["items"]
    assert not {e["id"] for e in theirs} & {e["id"] for e in entries}
    assert other_api.get(entries[0]["href"]).status_code == 404


def test_audit_pages_by_cursor(api: Api) -> None:
    for _ in range(3):
        registry: dict[str, Any] = api.create_registry()
        api.delete(registry["href"])
    first = api.get("/api/audit", params={"limit": 2}).json()
    assert first["total"] >= 6
    second = api.get(first["next"]).json()
    ids = [int(e["id"]) for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4
    assert api.get("/api/audit/not-a-number").status_code == 404
