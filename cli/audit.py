"""`responsed audit export` (tool calls as JSONL) and `responsed audit verify` (hash chains)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import IO

import orjson

from cli.flags import add_setting_flags
from domain.ports import ToolCallFilter
from service.audit import AuditService
from service.audit_key import audit_key
from service.runtime import Stores, with_stores
from service.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="the tool-call audit and the event hash chains")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    export = actions.add_parser("export", help="write recorded tool calls as JSON lines")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    export.add_argument(
        "--of-owner",
        dest="of_owner",
        default=None,
        help="only this owner's calls (default: every owner)",
    )
    export.add_argument("--name", default=None, help="only calls of this tool")
    export.add_argument("--response-id", default=None)
    export.add_argument("--conversation-id", default=None)
    export.add_argument("--status", default=None, help="completed | incomplete")
    export.add_argument("--has-output", choices=("true", "false"), default=None)
    export.add_argument("--since", type=float, default=None, help="created at or after (Unix s)")
    export.add_argument("--until", type=float, default=None, help="created before (Unix s)")
    verify = actions.add_parser(
        "verify", help="check every response's keyed event chain, its end and the audit ledger; "
        "exit 1 naming what is broken"
    )
    verify.add_argument(
        "--ledger-head", default=None, metavar="POSITION:MAC",
        help="a ledger head printed by an earlier verify and kept outside the database: "
        "also check that the ledger still holds it",
    )
    for parser in (export, verify):
        add_setting_flags(parser, "audit")


class Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, label: str, enabled: bool) -> None:
        self._label = label
        self._enabled = enabled
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent == self._shown and done != total:
            return
        self._shown = percent
        filled = percent // 4
        sys.stderr.write(f"\r{self._label} [{'#' * filled}{'.' * (25 - filled)}] {done}/{total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self._enabled and self._shown >= 0:
            sys.stderr.write("\n")


async def _export(service: AuditService, args: argparse.Namespace) -> int:
    where = ToolCallFilter(
        owner=args.of_owner,
        name=args.name,
        response_id=args.response_id,
        conversation_id=args.conversation_id,
        status=args.status,
        has_output=None if args.has_output is None else args.has_output == "true",
        since=args.since,
        until=args.until,
    )
    to_stdout = args.output == "-"
    total = await service.count(where)
    # A bar only where a person watches and it cannot mix with the output itself.
    progress = Progress(
        "exporting", sys.stderr.isatty() and not (to_stdout and sys.stdout.isatty())
    )
    out: IO[bytes] = sys.stdout.buffer if to_stdout else open(args.output, "wb")  # noqa: SIM115, ASYNC230
    written = 0
    try:
        async for row in service.export(where):
            out.write(orjson.dumps(row) + b"\n")
            written += 1
            progress(written, total)
    finally:
        progress.close()
        if not to_stdout:
            out.close()
        else:
            out.flush()
    if not to_stdout:
        print(f"wrote {written} tool calls to {args.output}", file=sys.stderr)
    return 0


async def _verify(service: AuditService, settings: Settings, args: argparse.Namespace) -> int:
    key = audit_key(settings.audit_key, settings.data_dir, create=False)
    progress = Progress("verifying", sys.stderr.isatty())
    try:
        verdict = await service.verify(key, progress, anchor=args.ledger_head)
    finally:
        progress.close()
    # Kept outside the database, this line lets a later verify see the ledger cut short.
    print(f"ledger head {verdict.ledger_head}")
    if verdict.anchor_note:
        print(verdict.anchor_note)
    if not verdict.broken:
        print(f"verified {verdict.checked} responses: every event chain, end and ledger entry "
              "is intact")
        return 0
    for what, reason in verdict.broken:
        print(f"{what}: {reason}")
    print(f"{len(verdict.broken)} problems in {verdict.checked} responses and the audit ledger",
          file=sys.stderr)
    return 1


async def _run(stores: Stores, settings: Settings, args: argparse.Namespace) -> int:
    service = AuditService(stores.audit)
    if args.audit_command == "export":
        return await _export(service, args)
    return await _verify(service, settings, args)


def run(settings: Settings, args: argparse.Namespace) -> int:
    async def use(stores: Stores) -> int:
        return await _run(stores, settings, args)

    # Only reads: an unmigrated SQLite file is left as it is.
    return asyncio.run(with_stores(settings.resolved_database_url, use, migrate=False))
