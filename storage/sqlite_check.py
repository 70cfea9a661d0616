"""Checks an SQLite store before a server starts on it, so a store that cannot be served is
refused with one line (what, where, what to do) instead of a server that says ready and then
fails requests: a directory it cannot write, a file that is not a database, one cut short, or
one whose pages are corrupted (`PRAGMA quick_check`, stopped after a time budget)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

log = logging.getLogger("responsed.storage")
_MAGIC = b"SQLite format 3\x00"


class StoreUnusable(ValueError):
    """The store cannot be served; the message is the one line to print."""


def _writable(directory: Path) -> bool:
    # A real write, not os.access: that says yes to root on a read-only mount or immutable dir.
    probe = directory / f".responsed-write-probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def _header(path: Path) -> tuple[int, int]:
    """(page size, page count) from the file header; raises when it is not a database."""
    with path.open("rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise StoreUnusable(
            f"{path} is not an SQLite database; point --data-dir (or DATABASE_URL) at a "
            "responsed store, or move this file away to start a new one"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    count = int.from_bytes(header[28:32], "big")
    # The header's count is valid only while its version matches the change counter.
    valid = header[24:28] == header[92:96]
    return page_size, count if valid else 0


def check_sqlite(path: Path, budget_s: float) -> None:
    """Raise StoreUnusable when the store at `path` cannot be served. `budget_s` bounds
    quick_check (0: skip it); a check cut off by it is logged, and the start goes on."""
    directory = path.parent
    if not directory.is_dir():
        raise StoreUnusable(f"{directory} is not a directory; set --data-dir to one")
    if not _writable(directory):
        raise StoreUnusable(
            f"the data directory {directory} is not writable (SQLite keeps its write-ahead "
            "log beside the database); make it writable by this user, or set --data-dir"
        )
    if not path.exists() or path.stat().st_size == 0:
        return  # a new store
    if not os.access(path, os.R_OK | os.W_OK) or not _opens_for_writing(path):
        raise StoreUnusable(f"the database {path} is not writable; make it writable by "
                            "this user")
    page_size, pages = _header(path)
    size = path.stat().st_size
    if pages and size < pages * page_size:
        raise StoreUnusable(
            f"the database {path} is truncated ({size} bytes, its header says "
            f"{pages * page_size}); restore it from a backup, or move it away to start anew"
        )
    if budget_s > 0:
        _quick_check(path, budget_s)


def _opens_for_writing(path: Path) -> bool:
    try:
        with path.open("r+b"):
            return True
    except OSError:
        return False


def _quick_check(path: Path, budget_s: float) -> None:
    started = time.monotonic()
    deadline = started + budget_s
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            rows = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.OperationalError as error:
            if "interrupted" not in str(error):
                raise _corrupt(path, str(error)) from None
            log.warning("quick_check stopped after %.1f s (--sqlite-check-s) before reaching the "
                        "end of %s: what it read was sound", budget_s, path)
            return
        except sqlite3.DatabaseError as error:
            raise _corrupt(path, str(error)) from None
    finally:
        conn.close()
    if rows != ["ok"]:
        raise _corrupt(path, "; ".join(rows[:2]))
    log.info("quick_check of %s: ok in %.2f s", path, time.monotonic() - started)


def _corrupt(path: Path, detail: str) -> StoreUnusable:
    return StoreUnusable(
        f"the database {path} is corrupt ({detail.strip()[:200]}); restore it from a backup, "
        "or recover what is readable with `sqlite3 responsed.db .recover`"
    )
