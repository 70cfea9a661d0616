"""The audit key: the secret the event chains and the audit ledger are keyed with. It is not
the encryption key, so whoever may read sealed reasoning still cannot forge the audit."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("responsed.audit")
_KEY_FILE = "audit.key"


def audit_key(secret: str, data_dir: str, *, create: bool = True) -> bytes:
    """The configured key, else the one kept in the data directory (made on first use)."""
    if not secret:
        path = Path(data_dir).expanduser() / _KEY_FILE
        if not path.exists():
            if not create:
                raise ValueError(f"no audit key: set RESPONSED_AUDIT_KEY (or --audit-key), or "
                                 f"run where {path} is")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
            log.warning("no RESPONSED_AUDIT_KEY set: made one in %s; keep a copy away from "
                        "the database, `responsed audit verify` needs it", path)
        secret = path.read_text().strip()
    return hashlib.sha256(b"responsed/audit/v1:" + secret.encode()).digest()
