"""`responsed keys …` and `responsed purge`: one-shot commands against the database."""

from __future__ import annotations

import argparse
import time
from typing import TextIO

from service.audit_key import audit_key
from service.runtime import Stores, build_retention, with_stores
from service.settings import Settings


def add_key_commands(keys: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="make a key; it is printed once and not stored")
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument("--name", required=True, help="what the key is for, shown by `list`")
    create.add_argument("--admin", action="store_true",
                        help="may also read every tenant's tool-call audit")
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--tenant", default=None, help="only this tenant's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the id `list` shows (the 12 characters after rsd_)")
    return [create, listing, revoke]


async def keys_command(settings: Settings, args: argparse.Namespace) -> int:
    async def run(stores: Stores) -> int:
        keys = stores.keys
        if args.keys_command == "create":
            key, record = await keys.create(args.tenant, args.name, admin=args.admin)
            print(key)
            print(f"key id {record.id}, tenant {record.tenant}"
                  f"{', admin' if record.admin else ''}: store it now, it is not shown again",
                  file=_stderr())
            return 0
        if args.keys_command == "list":
            print("id\ttenant\tname\tadmin\tcreated\trevoked")
            for r in await keys.list(args.tenant):
                print("\t".join([r.id, r.tenant, r.name, "yes" if r.admin else "no",
                                 _when(r.created_at), _when(r.revoked_at)]))
            return 0
        key_id = args.key_id.removeprefix("rsd_")[:12]
        if await keys.revoke(key_id):
            print(f"revoked {key_id}; servers stop accepting it within "
                  f"{settings.auth_cache_s:g} s")
            return 0
        print(f"no active key with id {key_id}", file=_stderr())
        return 1

    return await with_stores(settings.resolved_database_url, run)


async def purge_command(settings: Settings) -> int:
    async def run(stores: Stores) -> int:
        purged = await build_retention(settings, stores.retention).purge()
        print(f"purged {purged.responses} responses and {purged.audit_rows} audit rows, "
              f"{purged.conversations} conversations")
        return 0

    # A purge records what it removes in the audit ledger: it needs the audit key.
    key = audit_key(settings.audit_key, settings.data_dir, create=False)
    return await with_stores(settings.resolved_database_url, run, audit_key=key)


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def _stderr() -> TextIO:
    import sys

    return sys.stderr
