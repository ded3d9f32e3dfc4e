"""`/api/audit`: the caller's account's trail of management actions, newest first."""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.store import AuditEntry

from .context import Call, Services
from .envelope import Json, href, json_response, page, resource, timestamp
from .errors import not_found
from .pagination import cursor_of, limit_of, next_link


def _render(entry: AuditEntry) -> Json:
    properties = {
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "address": entry.address,
        "detail": entry.detail if isinstance(entry.detail, dict) else None,
    }
    return resource(
        "auditEntry",
        str(entry.id),
        href("audit", str(entry.id)),
        properties,
        {"createdAt": timestamp(entry.at)},
    )


def _is_entry_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


async def list_entries(services: Services, call: Call) -> web.Response:
    limit, cursor = limit_of(call.query), cursor_of(call.query, _is_entry_id)
    account_id = call.caller.account_id
    entries = await services.store.account_audit(
        account_id, before_id=int(cursor) if cursor else None, limit=limit + 1
    )
    total = await services.store.count_account_audit(account_id)
    more, entries = len(entries) > limit, entries[:limit]
    next_href = next_link(href("audit"), limit, cursor=str(entries[-1].id)) if more else None
    return json_response(page([_render(e) for e in entries], total=total, limit=limit, next_href=next_href))


async def get_entry(services: Services, call: Call) -> web.Response:
    entry_id = call.params["entryId"]
    if not _is_entry_id(entry_id):
        raise not_found("audit entry")
    entries = await services.store.account_audit(call.caller.account_id, entry_id=int(entry_id), limit=1)
    if not entries:
        raise not_found("audit entry")
    return json_response(_render(entries[0]))
