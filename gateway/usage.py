"""The pull and push counters of the application (storage/usage.py): the manifest handlers
record, the management API reads."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.usage import UsageCounters

USAGE = web.AppKey("ocigate.usage", UsageCounters)


def install_usage(app: web.Application, usage: UsageCounters) -> None:
    async def start(app: web.Application) -> None:
        usage.start()

    async def stop(app: web.Application) -> None:
        await usage.stop()

    app[USAGE] = usage
    app.on_startup.append(start)
    app.on_shutdown.append(stop)  # before on_cleanup closes the metadata store


def record_pull(request: web.Request, registry_id: str, repository: str) -> None:
    usage = request.app.get(USAGE)
    if usage is not None:
        usage.pull(registry_id, repository)


def record_push(request: web.Request, registry_id: str, repository: str) -> None:
    usage = request.app.get(USAGE)
    if usage is not None:
        usage.push(registry_id, repository)
