"""API keys: format, digests, and the authenticator's cache (revocation within its TTL)."""

from __future__ import annotations

import pytest

from domain import keys
from domain.keys import KeyRecord
from service.auth import Authenticator
from service.settings import Settings, is_loopback


def test_a_new_key_parses_back_to_its_id_and_matches_only_its_digest():
    key_id, key = keys.new_key()
    assert key.startswith("rsd_") and len(key) >= 4 + 12 + 1 + 43
    assert keys.key_id_of(key) == key_id
    assert keys.matches(key, keys.digest(key))
    assert not keys.matches(key[:-1] + ("A" if key[-1] != "A" else "B"), keys.digest(key))
    assert key not in keys.digest(key)


@pytest.mark.parametrize(
    "text",
    ["", "sk-test", "rsd_", "rsd_0123456789ab", "rsd_0123456789AB_" + "a" * 43,
     "rsd_0123456789ab_" + "a" * 42, "rsd_0123456789ab_" + "a" * 42 + "\x00",
     "rsd_0123456789ab_" + "a" * 44, " rsd_0123456789ab_" + "a" * 43],
)
def test_malformed_keys_have_no_id(text: str):
    assert keys.key_id_of(text) is None


@pytest.mark.parametrize("tenant", ["acme", "a", "team-1.prod", "user@example.com", "x" * 64])
def test_valid_tenants(tenant: str):
    assert keys.valid_tenant(tenant)


@pytest.mark.parametrize("tenant", ["", "-acme", "a b", "a\x00", "x" * 65, "ä", "a/b"])
def test_invalid_tenants(tenant: str):
    assert not keys.valid_tenant(tenant)


@pytest.mark.parametrize(
    ("host", "auth", "required"),
    [("127.0.0.1", "auto", False), ("localhost", "auto", False), ("::1", "auto", False),
     ("127.0.0.2", "auto", False), ("0.0.0.0", "auto", True), ("10.1.2.3", "auto", True),
     ("::", "auto", True), ("example.internal", "auto", True), ("127.0.0.1", "required", True)],
)
def test_auth_is_on_unless_the_server_listens_on_loopback(host: str, auth: str, required: bool):
    assert Settings(host=host, auth=auth).auth_required is required
    assert is_loopback(host) is (not required if auth == "auto" else True)


def test_an_unknown_auth_mode_is_refused():
    with pytest.raises(ValueError, match="'auto' or 'required'"):
        Settings(auth="off")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Keys:
    """An in-memory key table that counts lookups."""

    def __init__(self) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.lookups = 0

    def add(self, tenant: str, *, admin: bool = False) -> str:
        key_id, key = keys.new_key()
        self.records[key_id] = KeyRecord(key_id, tenant, "n", keys.digest(key), admin, 0.0, None)
        return key

    def revoke(self, key: str) -> None:
        key_id = keys.key_id_of(key)
        assert key_id is not None
        old = self.records[key_id]
        self.records[key_id] = KeyRecord(old.id, old.tenant, old.name, old.digest, old.admin,
                                          old.created_at, 5.0)

    async def get(self, key_id: str) -> KeyRecord | None:
        self.lookups += 1
        return self.records.get(key_id)


async def test_a_valid_key_resolves_to_its_tenant_and_is_looked_up_once_per_ttl():
    table, clock = Keys(), Clock()
    key = table.add("acme", admin=True)
    auth = Authenticator(table.get, cache_s=5.0, clock=clock)
    for _ in range(10):
        found = await auth.principal(key)
        assert found is not None and (found.tenant, found.admin) == ("acme", True)
    assert table.lookups == 1
    clock.now += 5.1
    assert await auth.principal(key) is not None
    assert table.lookups == 2


async def test_a_revoked_key_stops_working_once_the_cache_expires():
    table, clock = Keys(), Clock()
    key = table.add("acme")
    auth = Authenticator(table.get, cache_s=5.0, clock=clock)
    assert await auth.principal(key) is not None
    table.revoke(key)
    clock.now += 4.9
    assert await auth.principal(key) is not None  # still cached: the documented delay
    clock.now += 0.2
    assert await auth.principal(key) is None


async def test_wrong_secrets_unknown_ids_and_garbage_are_refused():
    table, clock = Keys(), Clock()
    key = table.add("acme")
    auth = Authenticator(table.get, cache_s=5.0, clock=clock)
    forged = key[:17] + ("A" if key[17] != "A" else "B") + key[18:]
    _, unknown = keys.new_key()
    for bad in (forged, unknown, None, "", "Bearer", "rsd_x", key + "x"):
        assert await auth.principal(bad) is None
    assert await auth.principal(key) is not None


async def test_made_up_key_ids_cannot_grow_the_cache_without_bound():
    table, clock = Keys(), Clock()
    auth = Authenticator(table.get, cache_s=60.0, max_entries=50, clock=clock)
    for _ in range(500):
        assert await auth.principal(keys.new_key()[1]) is None
    assert len(auth._cache) <= 50
