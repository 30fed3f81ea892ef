"""What every HTTP handler shares: the service context (bridge, tokens, limits, metrics), the
error answer, JSON encoding and the request plumbing (authentication, body limits).

Handlers come in two shapes: Starlette handlers (`app.py`) and the plain ASGI endpoint of the
hot route (`intents.py`). Both read headers and bodies through the functions here, so the
checks and the error answers are the same code whichever shape serves a route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

import msgspec
from starlette.responses import Response

from ordergate.model.reasons import REGISTRY
from ordergate.service.alerts import AlertRouter
from ordergate.service.auth import Principal, Role, TokenStore, bearer_token
from ordergate.service.bridge import EngineBridge, utc_now
from ordergate.service.journal_lookup import JournalDecisions
from ordergate.service.limits import MAX_BATCH_INTENTS, MAX_BODY_BYTES, RateLimiter
from ordergate.service.metrics import ServiceMetrics
from ordergate.service.schemas import ErrorBody
from ordergate.service.status import Inspector

JSON = "application/json"
encoder = msgspec.json.Encoder(decimal_format="string")

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class ApiError(Exception):
    """An error answer: HTTP status, a short machine code and a message for people."""

    def __init__(self, status: int, error: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> bytes:
        return encoder.encode(ErrorBody(error=self.error, detail=self.detail))


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nobody is left to answer."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encoder.encode(body), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: ApiError) -> Response:
    return Response(exc.body(), status_code=exc.status, media_type=JSON, headers=exc.headers)


class ServiceContext:
    """Everything the handlers share. One per app."""

    def __init__(self, *, bridge: EngineBridge, inspector: Inspector, tokens: TokenStore,
                 metrics: ServiceMetrics, alerts: AlertRouter, run_id: str,
                 journal_decisions: JournalDecisions,
                 limiter: RateLimiter | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 max_batch: int = MAX_BATCH_INTENTS,
                 wall_clock: Callable[[], datetime] = utc_now) -> None:
        self.bridge = bridge
        self.inspector = inspector
        self.tokens = tokens
        self.metrics = metrics
        self.alerts = alerts
        self.run_id = run_id
        self.journal_decisions = journal_decisions
        self.limiter = limiter or RateLimiter()
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        # Operator commands are stamped with the shell's wall clock (injected for tests).
        self.wall_clock = wall_clock

    # -- request plumbing

    def authenticate(self, authorization: str | None, allowed: frozenset[Role], *,
                     rate_limited: bool = True) -> Principal:
        """The caller of a request with this Authorization header, if it holds one of the
        `allowed` roles and (when `rate_limited`) is within its rate limit. Actions that stop
        trading pass rate_limited=False: an operator can always halt."""
        token = bearer_token(authorization)
        if token is None:
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <token>' header",
                           {"WWW-Authenticate": "Bearer"})
        principal = self.tokens.authenticate(token)
        if principal is None:
            raise ApiError(401, "unauthorized", "invalid token", {"WWW-Authenticate": "Bearer"})
        if principal.role not in allowed:
            wanted = " or ".join(sorted(role.value for role in allowed))
            raise ApiError(403, "forbidden",
                           f"token '{principal.name}' has role {principal.role.value}; "
                           f"this action needs {wanted}")
        if not rate_limited:
            return principal
        retry_after = self.limiter.check(principal.name, principal.requests_per_second,
                                         principal.burst)
        if retry_after:
            raise ApiError(429, "rate_limited",
                           f"token '{principal.name}' exceeded "
                           f"{principal.requests_per_second:g} requests/s",
                           {"Retry-After": str(retry_after)})
        return principal

    async def body(self, receive: Receive, content_length: str | None,
                   content_type: str | None) -> bytes:
        """The request body, refused before it is read when its declared size or media type
        is wrong, and while it is read once it passes `max_body_bytes`."""
        limit = self.max_body_bytes
        if content_length is not None:
            try:
                size = int(content_length)
            except ValueError:
                raise ApiError(400, "bad_request", "Content-Length is not a number") from None
            if size > limit:
                raise _too_large(limit)
        content_type = content_type or ""
        if content_type.split(";")[0].strip().lower() not in (JSON, ""):
            raise ApiError(415, "unsupported_media_type",
                           f"expected Content-Type {JSON}, got '{content_type}'")
        message = await receive()
        chunks: list[bytes] = []
        total = 0
        while True:
            if message["type"] == "http.disconnect":
                raise ClientGone("the client disconnected before its request body arrived")
            chunk: bytes = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # the usual case: the whole body in one message
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
            message = await receive()


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"request body exceeds {limit} bytes")


def decode_error(exc: msgspec.DecodeError) -> ApiError:
    if isinstance(exc, msgspec.ValidationError):
        return ApiError(422, "invalid", str(exc))
    return ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}")


def decode(body: bytes, type_: type[Any]) -> Any:
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None


def meaning(code: str) -> str:
    known = REGISTRY.get(code)
    return known.meaning if known else ""
