"""`ocigate`: run the gateway, and administer registries, users and tokens from the shell.

The administrative commands use the same domain code as the management API, on the stores the
`OCIGATE_*` settings name, so they work beside a running server (which sees their changes
within a second or two).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .settings import add_arguments, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocigate", description="OCI Distribution registry gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    add_arguments(commands.add_parser("serve", help="run the gateway"))
    add_arguments(
        commands.add_parser("healthcheck", help="exit 0 if the gateway listening per these settings is alive")
    )

    registry = commands.add_parser("registry", help="manage registries").add_subparsers(
        dest="action", required=True
    )
    for action, help_text in (
        ("create", "create a registry"),
        ("delete", "delete a registry and its content"),
    ):
        sub = registry.add_parser(action, help=help_text)
        sub.add_argument("name")
        if action == "create":
            sub.add_argument("--account", default="default", help="owning account (default: default)")
        add_arguments(sub)
    listing = registry.add_parser(
        "list", help="list registries with their storage use (bytes, each blob once) and the store's total"
    )
    listing.add_argument(
        "--repositories", action="store_true", help="also each repository's artifacts and bytes"
    )
    add_arguments(listing)
    update = registry.add_parser("update", help="change a registry's settings")
    update.add_argument("name")
    update.add_argument(
        "--delete-untagged",
        choices=("on", "off"),
        help="whether garbage collection removes untagged manifests (deleteUntaggedManifests)",
    )
    update.add_argument("--quota", help="storage quota in bytes (storageQuotaBytes), or 'none' to remove it")
    add_arguments(update)

    gc = commands.add_parser(
        "gc", help="collect garbage now: untagged manifests (per registry policy), unreferenced blobs"
    )
    gc.add_argument("--registry", help="only this registry (the global blob sweep runs either way)")
    gc.add_argument(
        "--grace",
        type=int,
        help="seconds unreferenced before removal, for this run (default OCIGATE_GC_GRACE)",
    )
    gc.add_argument("--dry-run", action="store_true", help="count what is garbage now, remove nothing")
    add_arguments(gc)

    user = commands.add_parser("user", help="manage account users").add_subparsers(
        dest="action", required=True
    )
    create_user = user.add_parser("create", help="create an account user (password from --password or stdin)")
    create_user.add_argument("username")
    create_user.add_argument(
        "--account", default="default", help="account (created if new; default: default)"
    )
    create_user.add_argument("--password", help="the password (else read from stdin, or generated)")
    add_arguments(create_user)
    for action, help_text in (
        ("delete", "delete an account user"),
        ("disable", "disable an account user (its logins and tokens stop)"),
        ("enable", "enable a disabled account user (its earlier tokens stay dead)"),
    ):
        sub = user.add_parser(action, help=help_text)
        sub.add_argument("username")
        add_arguments(sub)
    password_user = user.add_parser(
        "password", help="set an account user's password (from --password or stdin, else generated)"
    )
    password_user.add_argument("username")
    password_user.add_argument("--password", help="the new password (else read from stdin, or generated)")
    add_arguments(password_user)

    token = commands.add_parser("token", help="manage registry tokens").add_subparsers(
        dest="action", required=True
    )
    create_token = token.add_parser("create", help="create a token; prints its password once")
    create_token.add_argument("name")
    create_token.add_argument("--registry", required=True)
    create_token.add_argument(
        "--scope",
        action="append",
        required=True,
        help="PATTERN:ACTIONS, e.g. 'team/*:pull,push' or '*:pull'; 'registry:catalog' for the catalog",
    )
    create_token.add_argument("--expires", default="30d", help="lifetime: 90m, 12h, 30d, or 'never'")
    create_token.add_argument("--one-time", action="store_true", help="dead after its first tag (CI pushes)")
    add_arguments(create_token)
    list_tokens = token.add_parser("list", help="list a registry's tokens")
    list_tokens.add_argument("--registry", required=True)
    add_arguments(list_tokens)
    for action in ("disable", "enable", "delete"):
        sub = token.add_parser(action, help=f"{action} a token")
        sub.add_argument("name")
        sub.add_argument("--registry", required=True)
        add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    settings = load_settings(arguments)
    if arguments.command == "serve":
        if settings.server.workers > 1:
            from .workers import metrics_directory

            metrics_directory()  # before the server's modules import prometheus_client
        from .server import serve

        serve(settings)
        return 0
    if arguments.command == "healthcheck":
        from .healthcheck import check

        return check(settings)
    from .admin_cli import run

    return asyncio.run(run(settings, arguments))


if __name__ == "__main__":
    sys.exit(main())
