"""What every HTTP handler shares: the service context (bridge, tokens, limits, metrics), the
error answer, JSON encoding and the request plumbing (authentication, body limits).

Handlers come in two shapes: Starlette handlers (`app.py`) and the plain ASGI endpoint of the
hot route (`intents.py`). Both read headers and bodies through the functions here, so the
checks and the error answers are the same code whichever shape serves a route.
"""

from __future__ import annotations

import json
from collections import Counter
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
    """A request body as `type_`: 400 malformed, 422 invalid (naming the field), 422 when a
    key appears twice in one object."""
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None
    refuse_repeated_keys(body)
    return value


class _Repeated(dict[str, Any]):
    """A JSON object in which `key` appears `times` times (the decoders keep the last)."""

    __slots__ = ("key", "times")

    def __init__(self, pairs: list[tuple[str, Any]], key: str, times: int) -> None:
        super().__init__(pairs)
        self.key = key
        self.times = times


def _unique_or_marked(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    counts = Counter(key for key, _ in pairs)
    repeated = next(key for key, _ in pairs if counts[key] > 1)
    return _Repeated(pairs, repeated, counts[repeated])


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def _first_repeated(value: Any, path: str) -> tuple[str, int] | None:
    if isinstance(value, _Repeated):
        return _member(path, value.key), value.times
    if isinstance(value, dict):
        members = ((_member(path, key), item) for key, item in value.items())
    elif isinstance(value, list):
        members = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for where, item in members:
        found = _first_repeated(item, where)
        if found is not None:
            return found
    return None


_any_json = msgspec.json.Decoder()
_plain_encoder = msgspec.json.Encoder()


def may_repeat_keys(body: bytes) -> bool:
    """Whether a key may appear twice in one object of the JSON `body`: a cheap test for the
    hot routes, where reading every body again with `refuse_repeated_keys` (Python's json, a
    hook per object) would cost more than deciding it. The decoder keeps only the last of a
    repeated key, so the body read and written again lacks the quotes of the pairs it dropped
    (a key's own two at least): the same count of quotes means no key repeats. Escapes can
    change the count (`\\u0022` is written back as `\\"`), so a body holding a backslash, or
    one this decoder refuses, is left to the exact check."""
    if b"\\" in body:
        return True
    try:
        again = _plain_encoder.encode(_any_json.decode(body))
    except (msgspec.DecodeError, msgspec.EncodeError, RecursionError):
        return True
    return again.count(b'"') != body.count(b'"')


def refuse_repeated_keys(body: bytes) -> None:
    """Raise ApiError (422) naming the first key that appears more than once in one object of
    the JSON `body`. The decoders keep the last of them, so `{"dry_run": true, ...,
    "dry_run": false}` would do what the sender's first words said not to: a key may appear
    once. A body that is not JSON is left to the decoder that reports it."""
    try:
        tree = json.loads(body, object_pairs_hook=_unique_or_marked)
    except (ValueError, RecursionError):
        return
    found = _first_repeated(tree, "$")
    if found is not None:
        where, times = found
        said = "twice" if times == 2 else f"{times} times"
        raise ApiError(422, "invalid", f"{where}: appears {said}; a key may appear once")


def meaning(code: str) -> str:
    known = REGISTRY.get(code)
    return known.meaning if known else ""
