"""Access control: every request names its tenant with `Authorization: Bearer <key>`.

The middleware runs before routing's handlers and puts the request's principal in
`scope["auth"]`; handlers read it with `principal(request)`. Routes marked `opt={OPEN: True}`
(health, readiness, metrics, the OpenAPI document) need no key. When keys are not required,
every request acts for the configured default tenant.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from domain import keys
from domain.errors import TooManyRequests, Unauthorized
from domain.keys import Principal

OPEN = "auth_open"  # the route-handler opt that exempts a route from access control


class AuthMiddleware(ASGIMiddleware):
    exclude_opt_key = OPEN

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["auth"] = await authenticate(scope["litestar_app"].state.runtime, scope)
        await next_app(scope, receive, send)


async def authenticate(runtime: Any, scope: Any) -> Principal:
    """The principal the request's key names; Unauthorized when it names none, TooManyRequests
    while its client address has failed too often (checked before any lookup)."""
    authenticator = runtime.auth
    if authenticator is None:
        return runtime.default_principal  # type: ignore[no-any-return]
    key = _bearer(scope["headers"])
    throttle = runtime.auth_throttle
    address = (scope.get("client") or ("unknown",))[0]
    key_id = keys.key_id_of(key) if key else None
    wait = throttle.retry_after(address, key_id)
    if wait:
        raise TooManyRequests(
            "Too many failed authentication attempts from this address; try again later.",
            retry_after=wait, code="too_many_auth_failures")
    found = await authenticator.principal(key)
    if found is None:
        throttle.failed(address)
        # Nothing of the key goes back, not even a masked part of it.
        raise Unauthorized(
            "Incorrect API key provided." if key else
            "You didn't provide an API key. Send it in an Authorization header: "
            "'Authorization: Bearer <key>'.",
            code="invalid_api_key" if key else "missing_api_key",
        )
    if key_id is not None:
        throttle.succeeded(key_id)
    return found  # type: ignore[no-any-return]


def _bearer(headers: Any) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


def principal(request: Request[Any, Any, Any]) -> Principal:
    found: Principal = request.scope["auth"]  # set by the middleware above
    return found
