"""API keys and the principal a request acts as.

A key is `rsd_<key id>_<secret>`: the key id (12 hex characters) is public and finds the stored
record; the secret (32 random bytes) is only ever stored as part of the key's SHA-256 digest.
A plain digest is enough for keys this random (no dictionary to try), and the comparison of
digests is constant-time so a reply's timing says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

PREFIX = "rsd_"
_KEY_ID_LENGTH = 12
_KEY = re.compile(r"rsd_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: the tenant that owns what it stores and may read."""

    tenant: str
    admin: bool = False  # may read the tool-call audit of every tenant
    key_id: str | None = None  # None when access control is off


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is stored of a key: its digest, never the key."""

    id: str
    tenant: str
    name: str
    digest: str
    admin: bool
    created_at: float
    revoked_at: float | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def new_record(tenant: str, name: str, *, admin: bool = False) -> tuple[str, KeyRecord]:
    """(the key, its record) for a new key; ValueError for a bad tenant or name."""
    if not valid_tenant(tenant):
        raise ValueError(
            "a tenant is 1-64 letters, digits or . _ : @ - and starts with a letter or digit"
        )
    if not name or len(name) > 200 or "\x00" in name:
        raise ValueError("a key's name is 1-200 characters")
    key_id, key = new_key()
    return key, KeyRecord(key_id, tenant, name, digest(key), admin, time.time(), None)


def new_key() -> tuple[str, str]:
    """(key id, key). The key is shown once and never stored."""
    key_id = secrets.token_hex(_KEY_ID_LENGTH // 2)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key, else None (nothing else about it is looked at)."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(key), stored_digest)


def valid_tenant(name: str) -> bool:
    """Letters, digits and . _ : @ -, at most 64 characters: safe in logs and queries."""
    return _TENANT.fullmatch(name) is not None
