"""HTTP client for a running `ordergate serve` (the /v1 API).

    from ordergate import Client

    with Client("http://127.0.0.1:8080", token=os.environ["ORDERGATE_TOKEN"]) as client:
        result = client.submit({"intent_id": "i-1", "ts": "...", "account": "ACC-1", ...})
        print(result.decision.decision, result.decision.blocking, result.blocking_meaning)

Responses are the service's own msgspec types (`IntentResult`, `StatusView`...), so the client
and the server cannot disagree about a field.

Retries are bounded and happen only where repeating a request cannot do harm:

* reads (GET) and intent submits, which are idempotent on `intent_id` (a repeat returns the
  original decision with `replayed=true` and never sends a second order), are retried on
  connection errors, timeouts, lost answers, 503 and 429 (waiting what `Retry-After` says);
* operator commands and policy activation are retried only when the server provably did
  nothing: the connection could not be opened, or 429 (refused before any work).

A request that was sent but whose answer never came (a read timeout, the connection dropped)
may have been acted on. For a submit the client repeats it (same intent_id: the gateway answers
the original decision); when no answer comes within the retries, or for an operator command at
once, it raises `OutcomeUnknown`, never `GatewayUnavailable` (which means nothing was done).

Every failure is one exception class per cause: `AuthError` (401), `ForbiddenError` (403),
`NotFoundError` (404), `ConflictError` (409, with the field path), `ValidationError`
(400/413/415/422, with the field path), `RateLimitedError` (429), `ServerError` (5xx),
`GatewayUnavailable` (503 or no connection: nothing was done) and `OutcomeUnknown` (sent, no
answer: it may have been done).
A base URL the client cannot use (no http:// or https://, no host, a bad port) is refused when
the client is made, with `BadURLError` (also a ValueError).
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from ordergate.journal.base import redact_url, userinfo_password_spans
from ordergate.model.intent import OrderIntent
from ordergate.service.schemas import (
    BatchResult,
    CommandResult,
    DecisionPage,
    DecisionView,
    HealthView,
    IntentResult,
    PolicyResult,
    StatusView,
)

__all__ = [
    "AsyncClient",
    "AuthError",
    "BadURLError",
    "BatchResult",
    "Client",
    "ClientError",
    "CommandResult",
    "ConflictError",
    "DecisionPage",
    "DecisionView",
    "ForbiddenError",
    "GatewayUnavailable",
    "HealthView",
    "IntentResult",
    "NotFoundError",
    "OutcomeUnknown",
    "PolicyResult",
    "RateLimitedError",
    "ServerError",
    "StatusView",
    "ValidationError",
]

TOKEN_ENV = "ORDERGATE_TOKEN"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_WAIT_S = 30.0
_BACKOFF_S = 0.2

R = TypeVar("R")
_encoder = msgspec.json.Encoder(decimal_format="string")


# ---------------------------------------------------------------- errors


class ClientError(Exception):
    """A request failed. `status` is the HTTP status (0 when no answer came), `error` the
    server's short code, `detail` its message."""

    def __init__(self, message: str, *, status: int = 0, error: str = "",
                 detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.detail = detail or message


class AuthError(ClientError):
    """401: the token is missing or not valid."""


class ForbiddenError(ClientError):
    """403: the token's role or accounts do not allow this."""


class NotFoundError(ClientError):
    """404: e.g. no decision for that intent_id."""


class ConflictError(ClientError):
    """409: the request conflicts with what the gateway already holds, and nothing of it was
    done: an intent_id already names a different intent (`field` is its path, e.g.
    `$.intent_id` or `$.intents[1].intent_id`), or the engine refused an operator command
    (`field` '')."""

    def __init__(self, message: str, *, field: str = "", status: int = 409, error: str = "",
                 detail: str = "") -> None:
        super().__init__(message, status=status, error=error, detail=detail)
        self.field = field


class ValidationError(ClientError):
    """400, 413, 415 or 422: the request is malformed. `field` is the path the server (or the
    client, before sending) named, e.g. `$.qty` or `$.intents[3].account`; '' when none."""

    def __init__(self, message: str, *, field: str = "", status: int = 0, error: str = "",
                 detail: str = "") -> None:
        super().__init__(message, status=status, error=error, detail=detail)
        self.field = field


class RateLimitedError(ClientError):
    """429: too many requests for this token; `retry_after` seconds to wait."""

    def __init__(self, message: str, *, retry_after: float, status: int = 429,
                 error: str = "", detail: str = "") -> None:
        super().__init__(message, status=status, error=error, detail=detail)
        self.retry_after = retry_after


class ServerError(ClientError):
    """5xx: the gateway failed to answer the request."""


class GatewayUnavailable(ServerError):
    """503 (not durable or not ready: nothing was done), or after the allowed retries the
    gateway could not be reached (`status` 0, `error` "unreachable": nothing was sent) or a read
    got no answer (`error` "no_answer"). A submit or command sent without an answer is
    `OutcomeUnknown` instead."""


class OutcomeUnknown(ClientError):
    """The request was sent but no answer came (a read timeout, the connection dropped), so
    it may have been acted on: an intent decided and its order sent, a mode or policy changed.
    Not a GatewayUnavailable, which means nothing was done. The message says how to learn the
    outcome: resend the same intent_id (the gateway answers the original decision) or read
    `decision(intent_id)`; for an operator command read `status()`. `status` is 0."""


class BadURLError(ClientError, ValueError):
    """The base URL (or a URL built on it) cannot be used: nothing was sent. The message names
    the problem."""


def checked_base_url(base_url: str) -> str:
    """`base_url` without a trailing slash, if requests can be sent to it: http or https, a
    host, a port from 1 to 65535 when one is given. Otherwise BadURLError."""
    problem = http_url_problem(base_url)
    if problem:
        raise BadURLError(f"base_url '{_shown(base_url)}': {problem}", error="bad_url")
    return base_url.rstrip("/")


def http_url_problem(url: str) -> str:
    """What stops requests being sent to `url`, in words, or "": http or https, a host (of
    host-name characters), a port from 1 to 65535 when one is given, no surrounding
    whitespace. The client's base URL and the alert webhook are both checked with it."""
    if not url.strip():
        return "empty: expected an http:// or https:// URL, e.g. http://127.0.0.1:8080"
    if url != url.strip():
        return "leading or trailing whitespace"
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"not a valid URL: {_unreadable(url, exc)}"
    if not parsed.scheme:
        return "no scheme: expected http:// or https://, e.g. http://127.0.0.1:8080"
    if parsed.scheme not in ("http", "https"):
        return f"scheme '{parsed.scheme}': expected http or https"
    if not parsed.host:
        return "no host"
    if "%" in parsed.host:
        return "the host has characters a host name cannot have"
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        return f"port {parsed.port}: expected 1 to 65535"
    return ""


def _shown(url: str) -> str:
    """`url` with its password, if it has one, as `***` (`journal.redact_url`'s rule: a
    password written with an '@', '#' or ':' in it is masked whole)."""
    return redact_url(url)


def _unreadable(url: str, exc: httpx.InvalidURL) -> str:
    """Why httpx cannot read `url`: its own words, unless the URL holds a password, a piece
    of which httpx may quote (it reads 'u:pw#x@host' as host 'u', port 'pw')."""
    if not userinfo_password_spans(url):
        return str(exc)
    return ("its password is not written so a URL can carry it (percent-encode '@', ':', "
            "'/', '?', '#' and '%' in it: %40 %3A %2F %3F %23 %25)")


def _bad_url(call: _Call, base_url: str, exc: httpx.InvalidURL) -> BadURLError:
    return BadURLError(f"{call.method} {call.path}: cannot build a request on "
                       f"'{_shown(base_url)}': {_unreadable(base_url, exc)}", error="bad_url")


_FIELD_PATTERNS = (
    re.compile(r"at `(\$[^`]*)`"),
    re.compile(r"^(\$[\w.\[\]-]*):"),
    re.compile(r"^(?:query )?([a-z_][\w.]*):"),
)
# The server names a field of the request body it parsed on its own (the policy document of
# POST /v1/policy) as "request.<field>".
_REQUEST_BODY = "request."


def field_of(detail: str) -> str:
    """The field path a server message names ('' when it names none)."""
    for pattern in _FIELD_PATTERNS:
        found = pattern.search(detail)
        if found:
            path = found.group(1)
            if path.startswith(_REQUEST_BODY):
                path = path[len(_REQUEST_BODY):]
            return path if path.startswith("$") else f"$.{path}"
    return ""


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 1.0


DECIDED_NOT_ANSWERED = "decided_not_answered"  # `service.bridge.DECIDED_NOT_ANSWERED`


def _error_code(response: httpx.Response) -> str:
    try:
        return str(msgspec.json.decode(response.content, type=dict[str, Any]).get("error", ""))
    except msgspec.DecodeError:
        return ""


def error_for(response: httpx.Response) -> ClientError:
    """The exception for a non-2xx answer."""
    status = response.status_code
    try:
        body = msgspec.json.decode(response.content, type=dict[str, Any])
        error, detail = str(body.get("error", "")), str(body.get("detail", ""))
    except msgspec.DecodeError:
        error, detail = "", response.text[:500]
    where = f"{response.request.method} {response.request.url.path}"
    message = f"{where}: HTTP {status} {error}: {detail}".rstrip(": ")
    if status == 401:
        return AuthError(message, status=status, error=error, detail=detail)
    if status == 403:
        return ForbiddenError(message, status=status, error=error, detail=detail)
    if status == 404:
        return NotFoundError(message, status=status, error=error, detail=detail)
    if status == 409:
        return ConflictError(message, field=field_of(detail), error=error, detail=detail)
    if status in (400, 413, 415, 422):
        return ValidationError(message, field=field_of(detail), status=status, error=error,
                               detail=detail)
    if status == 429:
        return RateLimitedError(message, retry_after=_retry_after(response), error=error,
                                detail=detail)
    if status == 503:
        return GatewayUnavailable(message, status=status, error=error, detail=detail)
    if status >= 500:
        return ServerError(message, status=status, error=error, detail=detail)
    return ClientError(message, status=status, error=error, detail=detail)


# ---------------------------------------------------------------- requests


class Safety(enum.Enum):
    """How a request may be repeated."""

    IDEMPOTENT = "idempotent"  # GETs and intent submits: retry on any transient failure
    UNSAFE = "unsafe"  # commands: retry only when the server provably did nothing


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    result: Any
    safety: Safety
    body: bytes | None = None
    params: Mapping[str, str] | None = None
    ok_statuses: tuple[int, ...] = (200,)
    # For a request that changes something: how to learn whether it was done when it was sent
    # and no answer came.
    outcome_hint: str = ""


def _reject_floats(data: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if isinstance(value, float):
            raise ValidationError(
                f"{where}.{key}: expected a decimal string such as \"{value!r}\", got the float "
                f"{value!r} (floats are not exact)", field=f"{where}.{key}")


def _intent(intent: OrderIntent | Mapping[str, Any], where: str) -> OrderIntent:
    """Validate an intent before sending it, so a bad field fails here with its path."""
    if isinstance(intent, OrderIntent):
        return intent
    _reject_floats(intent, where)
    fields = {key: value for key, value in intent.items() if key != "type"}
    try:
        return msgspec.convert(fields, OrderIntent)
    except (msgspec.ValidationError, ValueError) as exc:
        message = str(exc)
        found = re.search(r" - at `\$(.*)`$", message)
        if found:
            path = where + found.group(1)
            message = message[:found.start()]
        else:
            # The model's own checks begin with the field's name ("qty: expected ..."): the
            # path replaces it rather than repeating it.
            named = re.match(r"([a-z_]\w*): ", message)
            path = f"{where}.{named.group(1)}" if named else where
            if named:
                message = message[named.end():]
        raise ValidationError(f"{path}: {message}", field=path) from None


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationError("$.reason: must not be blank (it is journaled as the why)",
                              field="$.reason")
    return reason


def _query(**values: Any) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValidationError(f"$.{name}: timestamp must carry a UTC offset",
                                      field=f"$.{name}")
            params[name] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        else:
            params[name] = str(value)
    return params


_COMMAND_HINT = ("{what} may have been carried out; read GET /v1/status ({where}) to learn "
                 "whether it was before sending it again")


class _Api:
    """The /v1 API as request descriptions; the sync and async clients only send them."""

    @staticmethod
    def submit(intent: OrderIntent | Mapping[str, Any]) -> _Call:
        checked = _intent(intent, "$")
        return _Call("POST", "/v1/intents", IntentResult, Safety.IDEMPOTENT,
                     body=_encoder.encode(checked), outcome_hint=(
                         f"intent_id '{checked.intent_id}' may have been decided and its order "
                         "sent; submit the same intent again (same intent_id: the gateway "
                         "answers the original decision, replayed, and sends no second order) "
                         f"or read decision('{checked.intent_id}'); do not send it under a new "
                         "intent_id"))

    @staticmethod
    def submit_batch(intents: Sequence[OrderIntent | Mapping[str, Any]]) -> _Call:
        checked = [_intent(item, f"$.intents[{index}]") for index, item in enumerate(intents)]
        if not checked:
            raise ValidationError("$.intents: at least one intent is needed", field="$.intents")
        body = _encoder.encode({"intents": checked})
        first = checked[0].intent_id
        return _Call("POST", "/v1/intents", BatchResult, Safety.IDEMPOTENT, body=body,
                     outcome_hint=(
                         f"the {len(checked)} intents (first intent_id '{first}') may have been "
                         "decided and their orders sent; submit the same batch again (same "
                         "intent_ids: the gateway answers the original decisions, replayed, "
                         "and sends no second order) or read decision(intent_id) for each; do "
                         "not send them under new intent_ids"))

    @staticmethod
    def status() -> _Call:
        return _Call("GET", "/v1/status", StatusView, Safety.IDEMPOTENT)

    @staticmethod
    def health() -> _Call:
        # 503 carries a HealthView too: "not ready" is an answer, not an error.
        return _Call("GET", "/v1/health", HealthView, Safety.IDEMPOTENT, ok_statuses=(200, 503))

    @staticmethod
    def decisions(**filters: Any) -> _Call:
        return _Call("GET", "/v1/decisions", DecisionPage, Safety.IDEMPOTENT,
                     params=_query(**filters))

    @staticmethod
    def decision(intent_id: str) -> _Call:
        if not intent_id:
            raise ValidationError("$.intent_id: must not be empty", field="$.intent_id")
        # One path segment whatever the id holds: '/' and '%' percent-encoded, and an id that
        # is a dot segment too, or the URL would be resolved ('/v1/decisions/..' is '/v1').
        segment = quote(intent_id, safe="")
        if segment in (".", ".."):
            segment = segment.replace(".", "%2E")
        return _Call("GET", "/v1/decisions/" + segment, DecisionView, Safety.IDEMPOTENT)

    @staticmethod
    def mode(action: str, reason: str, cancel_all: bool | None = None) -> _Call:
        body: dict[str, Any] = {"reason": _reason(reason)}
        if cancel_all is not None:
            body["cancel_all"] = cancel_all
        return _Call("POST", f"/v1/mode/{action}", CommandResult, Safety.UNSAFE,
                     body=_encoder.encode(body), outcome_hint=_COMMAND_HINT.format(
                         what=f"the {action} command", where="status().mode"))

    @staticmethod
    def end_dry_run(reason: str) -> _Call:
        return _Call("POST", "/v1/policy/dry-run/end", CommandResult, Safety.UNSAFE,
                     body=_encoder.encode({"reason": _reason(reason)}),
                     outcome_hint=_COMMAND_HINT.format(
                         what="ending the dry run", where="status().shadow_policy_hash"))

    @staticmethod
    def activate_policy(document: str | os.PathLike[str], reason: str, dry_run: bool) -> _Call:
        if isinstance(document, os.PathLike):
            text = Path(document).read_text(encoding="utf-8")
        else:
            text = document
        body = _encoder.encode({"document": text, "reason": _reason(reason), "dry_run": dry_run})
        return _Call("POST", "/v1/policy", PolicyResult, Safety.UNSAFE, body=body,
                     outcome_hint=_COMMAND_HINT.format(
                         what="the policy", where="status().policy_hash and "
                                                  "status().shadow_policy_hash"))


def _decode(call: _Call, response: httpx.Response) -> Any:
    try:
        return msgspec.json.decode(response.content, type=call.result)
    except msgspec.DecodeError as exc:
        raise ServerError(f"{call.method} {call.path}: the answer does not match the API "
                          f"schema: {exc}", status=response.status_code) from None


# Transport errors raised before any byte of the request reached the gateway: no connection
# could be had. Every other transport error (a read or write timeout, a dropped connection,
# a protocol error) may come after the gateway read the request and acted on it.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
               httpx.UnsupportedProtocol)


@dataclass(slots=True)
class _Retry:
    """The retry budget of one call, and whether an attempt may have been acted on."""

    retries: int
    max_wait_s: float
    attempt: int = 0
    maybe_acted: bool = False

    def after_transport(self, call: _Call, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before trying again, or None to give up."""
        nothing_sent = isinstance(exc, _NEVER_SENT)
        if not nothing_sent and call.outcome_hint:
            self.maybe_acted = True
        if call.safety is Safety.UNSAFE and not nothing_sent:
            return None
        return self._next(_BACKOFF_S * (2 ** self.attempt))

    def after_status(self, call: _Call, response: httpx.Response) -> float | None:
        status = response.status_code
        if status == 503 and call.outcome_hint and _error_code(response) == DECIDED_NOT_ANSWERED:
            # the gateway decided (and may have sent) before its answer failed
            self.maybe_acted = True
        if status == 429:
            wait = _retry_after(response)
            return None if wait > self.max_wait_s else self._next(wait)
        if status == 503 and call.safety is Safety.IDEMPOTENT:
            wait = _retry_after(response) if "retry-after" in response.headers else \
                _BACKOFF_S * (2 ** self.attempt)
            return None if wait > self.max_wait_s else self._next(wait)
        return None

    def _next(self, wait: float) -> float | None:
        if self.attempt >= self.retries:
            return None
        self.attempt += 1
        return min(wait, self.max_wait_s)


def _transport_failure(call: _Call, base_url: str, exc: httpx.TransportError,
                       retry: _Retry) -> ClientError:
    """The error for the transport failure that ended a call: OutcomeUnknown when an attempt
    that changes something may have reached the gateway, else GatewayUnavailable."""
    shown = _shown(base_url)
    what = f"{type(exc).__name__}: {_shown(str(exc))}".rstrip(": ")
    if retry.maybe_acted:
        return OutcomeUnknown(
            f"{call.method} {call.path}: sent to the gateway at {shown} but no answer came "
            f"({what}): {call.outcome_hint}", status=0, error="outcome_unknown")
    if isinstance(exc, _NEVER_SENT):
        return GatewayUnavailable(f"{call.method} {call.path}: gateway at {shown} unreachable, "
                                  f"nothing was sent: {what}", status=0, error="unreachable")
    return GatewayUnavailable(f"{call.method} {call.path}: gateway at {shown} sent no answer: "
                              f"{what}", status=0, error="no_answer")


def _status_failure(call: _Call, response: httpx.Response, retry: _Retry) -> ClientError:
    """The error for the answer that ended a call. An earlier attempt may have been acted on
    (it was sent, no answer came): an answer that says nothing about it (429, 5xx) leaves the
    outcome unknown."""
    error = error_for(response)
    if retry.maybe_acted and (response.status_code == 429 or response.status_code >= 500):
        return OutcomeUnknown(
            f"{call.method} {call.path}: an earlier attempt may have been acted on (sent with "
            "no answer, or decided before its answer failed), and the last one was answered "
            f"HTTP {response.status_code} {error.error}: "
            f"{call.outcome_hint}",
            status=0, error="outcome_unknown", detail=error.detail)
    return error


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "ordergate-client"}
    resolved = token if token is not None else os.environ.get(TOKEN_ENV)
    if resolved:
        headers["Authorization"] = f"Bearer {resolved}"
    return headers


class Client:
    """Synchronous client. `token` defaults to $ORDERGATE_TOKEN. `retries` bounds the repeats
    of one call; `max_retry_wait_s` is the longest Retry-After it will sit out (longer: the
    `RateLimitedError` is raised for you to decide). `transport` is for custom httpx transports."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 max_retry_wait_s: float = DEFAULT_MAX_WAIT_S,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = checked_base_url(base_url)
        self._retries = retries
        self._max_wait_s = max_retry_wait_s
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(token),
                                  timeout=timeout_s, transport=transport)

    def _send(self, call: _Call) -> Any:
        retry = _Retry(self._retries, self._max_wait_s)
        headers = {"Content-Type": "application/json"} if call.body is not None else None
        while True:
            try:
                response = self._http.request(call.method, call.path, content=call.body,
                                              params=call.params, headers=headers)
            except httpx.InvalidURL as exc:  # not an httpx.HTTPError: never retried
                raise _bad_url(call, self.base_url, exc) from None
            except httpx.TransportError as exc:
                wait = retry.after_transport(call, exc)
                if wait is None:
                    raise _transport_failure(call, self.base_url, exc, retry) from None
                self._sleep(wait)
                continue
            if response.status_code in call.ok_statuses:
                return _decode(call, response)
            wait = retry.after_status(call, response)
            if wait is None:
                raise _status_failure(call, response, retry)
            self._sleep(wait)

    def submit(self, intent: OrderIntent | Mapping[str, Any]) -> IntentResult:
        """Decide one intent. Safe to repeat: the same intent_id gets the original decision."""
        result: IntentResult = self._send(_Api.submit(intent))
        return result

    def submit_batch(self, intents: Sequence[OrderIntent | Mapping[str, Any]]) -> BatchResult:
        """Decide up to 1000 intents in one request (one journal flush)."""
        result: BatchResult = self._send(_Api.submit_batch(intents))
        return result

    def status(self) -> StatusView:
        result: StatusView = self._send(_Api.status())
        return result

    def health(self) -> HealthView:
        """Liveness and readiness; `ready` is false (not an exception) when the gateway
        answers but is not ready."""
        result: HealthView = self._send(_Api.health())
        return result

    def decisions(self, *, since: datetime | None = None, until: datetime | None = None,
                  symbol: str | None = None, account: str | None = None,
                  reason: str | None = None, decision: str | None = None,
                  limit: int | None = None, cursor: str | None = None,
                  shadow_differs: bool | None = None) -> DecisionPage:
        """One page of recent decisions, newest first. `shadow_differs` keeps only intents
        judged during a policy dry run whose shadow outcome differs (True) or agrees (False)."""
        result: DecisionPage = self._send(_Api.decisions(
            since=since, until=until, symbol=symbol, account=account, reason=reason,
            decision=decision, limit=limit, cursor=cursor, shadow_differs=shadow_differs))
        return result

    def iter_decisions(self, **filters: Any) -> Iterator[DecisionView]:
        """Every matching decision, newest first, following the pages."""
        cursor: str | None = None
        while True:
            page = self.decisions(**filters, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def decision(self, intent_id: str) -> DecisionView:
        result: DecisionView = self._send(_Api.decision(intent_id))
        return result

    def halt(self, reason: str, cancel_all: bool = False) -> CommandResult:
        result: CommandResult = self._send(_Api.mode("halt", reason, cancel_all))
        return result

    def reduce_only(self, reason: str) -> CommandResult:
        result: CommandResult = self._send(_Api.mode("reduce-only", reason))
        return result

    def resume(self, reason: str) -> CommandResult:
        result: CommandResult = self._send(_Api.mode("resume", reason))
        return result

    def activate_policy(self, document: str | os.PathLike[str], reason: str, *,
                        dry_run: bool = False) -> PolicyResult:
        """Validate and activate a policy: YAML text, or a path to the policy file; `reason`
        is journaled with the activation. With `dry_run` it only becomes the shadow policy:
        judged beside the enforced one for every intent (see `DecisionView.shadow`), never
        enforced."""
        result: PolicyResult = self._send(_Api.activate_policy(document, reason, dry_run))
        return result

    def end_dry_run(self, reason: str) -> CommandResult:
        """End a policy dry run without enforcing its policy (nothing else changes)."""
        result: CommandResult = self._send(_Api.end_dry_run(reason))
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncClient:
    """The asyncio twin of `Client`: the same methods, as coroutines."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES,
                 max_retry_wait_s: float = DEFAULT_MAX_WAIT_S,
                 sleep: Callable[[float], Any] = _async_sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = checked_base_url(base_url)
        self._retries = retries
        self._max_wait_s = max_retry_wait_s
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(token),
                                       timeout=timeout_s, transport=transport)

    async def _send(self, call: _Call) -> Any:
        retry = _Retry(self._retries, self._max_wait_s)
        headers = {"Content-Type": "application/json"} if call.body is not None else None
        while True:
            try:
                response = await self._http.request(call.method, call.path, content=call.body,
                                                    params=call.params, headers=headers)
            except httpx.InvalidURL as exc:  # not an httpx.HTTPError: never retried
                raise _bad_url(call, self.base_url, exc) from None
            except httpx.TransportError as exc:
                wait = retry.after_transport(call, exc)
                if wait is None:
                    raise _transport_failure(call, self.base_url, exc, retry) from None
                await self._sleep(wait)
                continue
            if response.status_code in call.ok_statuses:
                return _decode(call, response)
            wait = retry.after_status(call, response)
            if wait is None:
                raise _status_failure(call, response, retry)
            await self._sleep(wait)

    async def submit(self, intent: OrderIntent | Mapping[str, Any]) -> IntentResult:
        result: IntentResult = await self._send(_Api.submit(intent))
        return result

    async def submit_batch(self, intents: Sequence[OrderIntent | Mapping[str, Any]]
                           ) -> BatchResult:
        result: BatchResult = await self._send(_Api.submit_batch(intents))
        return result

    async def status(self) -> StatusView:
        result: StatusView = await self._send(_Api.status())
        return result

    async def health(self) -> HealthView:
        result: HealthView = await self._send(_Api.health())
        return result

    async def decisions(self, *, since: datetime | None = None, until: datetime | None = None,
                        symbol: str | None = None, account: str | None = None,
                        reason: str | None = None, decision: str | None = None,
                        limit: int | None = None, cursor: str | None = None,
                        shadow_differs: bool | None = None) -> DecisionPage:
        result: DecisionPage = await self._send(_Api.decisions(
            since=since, until=until, symbol=symbol, account=account, reason=reason,
            decision=decision, limit=limit, cursor=cursor, shadow_differs=shadow_differs))
        return result

    async def iter_decisions(self, **filters: Any) -> AsyncIterator[DecisionView]:
        cursor: str | None = None
        while True:
            page = await self.decisions(**filters, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def decision(self, intent_id: str) -> DecisionView:
        result: DecisionView = await self._send(_Api.decision(intent_id))
        return result

    async def halt(self, reason: str, cancel_all: bool = False) -> CommandResult:
        result: CommandResult = await self._send(_Api.mode("halt", reason, cancel_all))
        return result

    async def reduce_only(self, reason: str) -> CommandResult:
        result: CommandResult = await self._send(_Api.mode("reduce-only", reason))
        return result

    async def resume(self, reason: str) -> CommandResult:
        result: CommandResult = await self._send(_Api.mode("resume", reason))
        return result

    async def activate_policy(self, document: str | os.PathLike[str], reason: str, *,
                              dry_run: bool = False) -> PolicyResult:
        result: PolicyResult = await self._send(_Api.activate_policy(document, reason, dry_run))
        return result

    async def end_dry_run(self, reason: str) -> CommandResult:
        result: CommandResult = await self._send(_Api.end_dry_run(reason))
        return result

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()
