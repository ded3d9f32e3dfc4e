"""`ocigate`: run the gateway and administer registries from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from storage.registries import Registries

from .settings import Settings, add_arguments, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocigate", description="OCI Distribution registry gateway")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    add_arguments(serve)

    registry = commands.add_parser("registry", help="manage registries")
    registry_commands = registry.add_subparsers(dest="action", required=True)
    for action, help_text in (("create", "create a registry"), ("delete", "delete a registry")):
        sub = registry_commands.add_parser(action, help=help_text)
        sub.add_argument("name")
        add_arguments(sub)
    add_arguments(registry_commands.add_parser("list", help="list registries"))

    arguments = parser.parse_args(argv)
    settings = load_settings(arguments)
    if arguments.command == "serve":
        from .server import serve

        serve(settings)
        return 0
    return asyncio.run(_registry_command(settings, arguments))


async def _registry_command(settings: Settings, arguments: argparse.Namespace) -> int:
    registries = await Registries.open(settings.storage())
    try:
        if arguments.action == "create":
            try:
                record = await registries.create(arguments.name)
            except ValueError as exc:
                print(f"ocigate: {exc}", file=sys.stderr)
                return 2
            except KeyError:
                print(f"ocigate: registry {arguments.name!r} already exists", file=sys.stderr)
                return 1
            host = f"{record.name}.{settings.domain}" if settings.domain else "(set OCIGATE_DOMAIN)"
            print(f"created registry {record.name} ({record.id}), served at {host}")
        elif arguments.action == "delete":
            if not await registries.metadata.delete_registry(arguments.name):
                print(f"ocigate: no registry {arguments.name!r}", file=sys.stderr)
                return 1
            print(f"deleted registry {arguments.name}")
        else:
            for record in await registries.metadata.list_registries():
                print(f"{record.name}\t{record.id}")
    finally:
        await registries.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
