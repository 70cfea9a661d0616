"""Sealed reasoning for store:false clients: reasoning items carry their text encrypted
(AES-256-GCM) in `encrypted_content`, and come back in the next request's input. Only a
deployment holding the key can read a blob back, and only for the owner it was made for;
a changed or foreign blob is refused. Compaction summaries are sealed the same way, bound to
their purpose as well, so that neither kind of blob can pass for the other."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import InvalidRequest

log = logging.getLogger("responsed.sealing")
_PREFIX = "rsd1."
_KEY_FILE = "reasoning.key"
_COMPACTION_AAD = b"\x00compaction"


class Sealer:
    def __init__(self, secret: str) -> None:
        # Any string works as the configured secret; the cipher key is derived from it.
        self._aead = AESGCM(hashlib.sha256(b"responsed/reasoning/v1:" + secret.encode()).digest())

    @classmethod
    def from_settings(cls, secret: str, data_dir: str) -> Sealer:
        """The configured key, else one kept in the data directory (made on first use)."""
        if secret:
            return cls(secret)
        path = Path(data_dir).expanduser() / _KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
            log.warning("no RESPONSED_ENCRYPTION_KEY set: made one in %s", path)
        return cls(path.read_text().strip())

    def seal(self, item: dict[str, Any], owner: str) -> str:
        plain = orjson.dumps(
            {"summary": item.get("summary") or [], "content": item.get("content") or []}
        )
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plain, owner.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def seal_summary(self, summary: str, owner: str) -> str:
        """A compaction item's encrypted_content."""
        nonce = secrets.token_bytes(12)
        plain = orjson.dumps({"summary": summary})
        sealed = self._aead.encrypt(nonce, plain, owner.encode() + _COMPACTION_AAD)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_summary(self, blob: str, owner: str, param: str) -> str:
        """The summary sealed in a compaction item; 400 if it is not one of ours."""
        value = self._open(blob, owner.encode() + _COMPACTION_AAD, param)
        summary = value.get("summary") if isinstance(value, dict) else None
        if not isinstance(summary, str):
            raise _unverified(param)
        return summary

    def open(self, blob: str, owner: str, param: str) -> dict[str, Any]:
        """{summary, content} of a sealed reasoning item; 400 if it is not one of ours."""
        item: dict[str, Any] = self._open(blob, owner.encode(), param)  # we sealed an object
        return item

    def _open(self, blob: str, aad: bytes, param: str) -> Any:
        try:
            if not blob.startswith(_PREFIX):
                raise ValueError("not a responsed blob")
            raw = base64.urlsafe_b64decode(blob[len(_PREFIX) :].encode())
            plain = self._aead.decrypt(raw[:12], raw[12:], aad)
            value = orjson.loads(plain)
        except (ValueError, InvalidTag, binascii.Error, orjson.JSONDecodeError):
            raise _unverified(param) from None
        return value


def _unverified(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"The encrypted content in '{param}' could not be verified: it was changed, "
        "or made by another deployment.",
        param=param,
        code="invalid_encrypted_content",
    )
