"""`/api/audit`: the caller's account's trail of management actions, newest first."""

from __future__ import annotations

from aiohttp import web

from ocigate.auth.store import AuditEntry as StoredEntry

from .content_models import AuditCursor, AuditEntry, AuditEntryProperties, AuditList, is_entry_id
from .context import Call, Services
from .envelope import created, href, json_response
from .errors import not_found
from .pagination import next_link


def _render(entry: StoredEntry) -> AuditEntry:
    properties = AuditEntryProperties(
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        address=entry.address,
        detail=entry.detail if isinstance(entry.detail, dict) else None,
    )
    entry_id = str(entry.id)
    return AuditEntry(
        id=entry_id, href=href("audit", entry_id), metadata=created(entry.at), properties=properties
    )


async def list_entries(services: Services, call: Call, query: AuditCursor) -> web.Response:
    limit, cursor, only = query.limit, query.after, query.only()
    account_id = call.caller.account_id
    entries = await services.store.account_audit(
        account_id, before_id=int(cursor) if cursor else None, limit=limit + 1, only=only
    )
    total = await services.store.count_account_audit(account_id, only)
    more, entries = len(entries) > limit, entries[:limit]
    next_href = None
    if more:  # the filters carry over to the next page
        next_href = next_link(
            href("audit"),
            limit,
            cursor=str(entries[-1].id),
            actor=query.actor,
            action=query.action,
            since=query.since,
            until=query.until,
        )
    items = [_render(entry) for entry in entries]
    return json_response(AuditList(items=items, total=total, limit=limit, next=next_href))


async def get_entry(services: Services, call: Call) -> web.Response:
    entry_id = call.params["entryId"]
    if not is_entry_id(entry_id):
        raise not_found("audit entry")
    entries = await services.store.account_audit(call.caller.account_id, entry_id=int(entry_id), limit=1)
    if not entries:
        raise not_found("audit entry")
    return json_response(_render(entries[0]))
