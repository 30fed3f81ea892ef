"""POST /v1/intents, the hot route, as a plain ASGI endpoint.

Every other route is a Starlette handler; this one carries nearly all the traffic, so it
reads the ASGI scope and messages itself: no Request or Response objects, no exception
middleware (it answers every error itself), headers picked out in one pass. `create_app`
mounts it as the route's ASGI app (so Starlette still answers 405 for other methods) and
`front_door` hands it POST /v1/intents before the router sees the request. The
checks, their order and the answers are those of the other routes (`context.py`): tests
send the same requests through Starlette and through the front door and compare the bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import structlog

from ordergate.model.intent import OrderIntent, reserved_id_problem
from ordergate.service.auth import Role
from ordergate.service.bridge import (
    DecisionRecord,
    IntentConflict,
    IntentOutOfTime,
    ServiceUnavailable,
    TimeBound,
)
from ordergate.service.context import (
    ApiError,
    ClientGone,
    Receive,
    ServiceContext,
    decode_error,
    encoder,
    may_repeat_keys,
    meaning,
    refuse_repeated_keys,
)
from ordergate.service.limits import MAX_BATCH_INTENTS, MAX_TS_AHEAD, MAX_TS_BEHIND
from ordergate.service.schemas import BatchResult, ErrorBody, IntentBatch, IntentResult

log = structlog.get_logger("ordergate.service")

PATH = "/v1/intents"
_TRADER = frozenset({Role.TRADER})
_CONTENT_TYPE = (b"content-type", b"application/json")
_intent_decoder = msgspec.json.Decoder(OrderIntent)
_batch_decoder = msgspec.json.Decoder(IntentBatch)
_peek = msgspec.json.Decoder(dict[str, msgspec.Raw])
_raw_items = msgspec.json.Decoder(list[msgspec.Raw])

Scope = MutableMapping[str, Any]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _decoded_intents(body: bytes, max_batch: int = MAX_BATCH_INTENTS
                     ) -> tuple[list[OrderIntent], bool]:
    """`parse_intents` before the checks of repeated keys and reserved client order ids."""
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        # Most requests are one intent: decode it straight away. OrderIntent forbids unknown
        # fields, so a body that decodes as one has no top-level "intents" key: it is not a
        # batch. Anything else takes the general path, which tells batches from single
        # intents by their keys and reports the error of the shape the body has.
        return [_intent_decoder.decode(body)], False
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    try:
        keys = peek_keys(body)
        if "intents" in keys:
            check_batch_size(keys["intents"], "intents", max_batch)
            return _batch_decoder.decode(body).intents, True
        return [_intent_decoder.decode(body)], False
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None


def parse_intents(body: bytes, max_batch: int = MAX_BATCH_INTENTS
                  ) -> tuple[list[OrderIntent], bool]:
    """The intents of a request body and whether it was a batch (`{"intents": [...]}`)
    rather than one intent. Raises ApiError (400 malformed, 413 a batch of more than
    `max_batch`, 422 invalid, including a key that appears twice in one object and a
    client_order_id reserved for derived ids)."""
    intents, batch = _decoded_intents(body, max_batch)
    if may_repeat_keys(body):
        refuse_repeated_keys(body)
    for position, intent in enumerate(intents):
        problem = reserved_id_problem(intent)
        if problem is not None:
            where = f"$.intents[{position}]" if batch else "$"
            raise ApiError(422, "invalid", f"{where}.client_order_id: {problem}")
    return intents, batch


def check_batch_size(items: msgspec.Raw, name: str, max_batch: int) -> None:
    """Refuse (413 batch_too_large) a batch array of more than `max_batch` items, counted
    before any item is decoded (each is only skipped over; the body size limit bounds the
    scan). A value that is not an array is left for the batch decoder to report."""
    try:
        count = len(_raw_items.decode(items))
    except msgspec.DecodeError:
        return
    if count > max_batch:
        raise ApiError(413, "batch_too_large",
                       f"{name}: {count} {name}, at most {max_batch} per request")


def not_utf8(exc: UnicodeDecodeError) -> ApiError:
    """The answer to a body whose JSON strings hold bytes that are not UTF-8 (msgspec raises
    UnicodeDecodeError, not a DecodeError, for those)."""
    byte = exc.object[exc.start:exc.start + 1].hex().upper() or "?"
    return ApiError(400, "malformed_json",
                    f"request body is not valid UTF-8: a JSON string holds the byte 0x{byte} "
                    f"({exc.reason}); send the body encoded as UTF-8")


def peek_keys(body: bytes) -> dict[str, msgspec.Raw]:
    """The top-level keys of a JSON object body, their values left undecoded. Raises
    msgspec.DecodeError, or ApiError (400) for a body nested deeper than the decoder recurses
    (skipping a value is recursive: `{"x": [[[[...` thousands deep would otherwise be a 500)."""
    try:
        return _peek.decode(body)
    except RecursionError:
        raise ApiError(400, "malformed_json",
                       "request body is nested too deeply; expected a JSON object of the "
                       "documented shape") from None


def _result(serving_run_id: str, record: DecisionRecord, replayed: bool) -> IntentResult:
    """The decision with the run that made it; a decision recalled from the engine's memory
    does not know its run, and is answered with the serving run's id, saying so."""
    decision = record.decision
    return IntentResult(intent_id=decision.intent_id, run_id=record.run_id or serving_run_id,
                        replayed=replayed, decision=decision,
                        blocking_meaning=meaning(decision.blocking),
                        decision_run_known=bool(record.run_id))


class IntentsEndpoint:
    """Decide the intents of one request (authenticated trader, its own accounts only) and
    answer with their decisions, after they are durable."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._observe = ctx.metrics.request_observer(PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = [_CONTENT_TYPE]
        try:
            status, body = 200, await self._decide(scope, receive)
        except ApiError as exc:
            status, body = exc.status, exc.body()
            headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                       for name, value in exc.headers.items()] + headers
        except ServiceUnavailable as exc:  # its words are for the client (`client_words`)
            status, body = 503, ApiError(503, exc.error, str(exc)).body()
        except ClientGone:
            return
        except Exception as exc:  # the route's outermost handler: never a stack trace out
            log.error("request_failed", path=PATH, error=type(exc).__name__)
            status = 500
            body = encoder.encode(ErrorBody(error="internal", detail="internal error; see the log"))
        self._observe(status, time.perf_counter() - started)
        headers.insert(-1, (b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _decide(self, scope: Scope, receive: Receive) -> bytes:
        authorization = content_length = content_type = None
        for name, value in scope["headers"]:
            # The first of repeated headers counts, as in Starlette's Headers.get.
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"content-length":
                if content_length is None:
                    content_length = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
        ctx = self._ctx
        principal = ctx.authenticate(authorization, _TRADER)
        body = await ctx.body(receive, content_length, content_type)
        intents, batch = parse_intents(body, ctx.max_batch)
        for position, intent in enumerate(intents):
            if not principal.can_trade(intent.account):
                where = f"$.intents[{position}].account" if batch else "$.account"
                raise ApiError(403, "forbidden",
                               f"{where}: token '{principal.name}' may not trade account "
                               f"'{intent.account}'")
        bound = TimeBound(now=ctx.wall_clock(), ahead=MAX_TS_AHEAD, behind=MAX_TS_BEHIND)
        try:
            answers = await ctx.bridge.submit_intents(intents, bound=bound)
        except IntentConflict as exc:
            where = f"$.intents[{exc.position}].intent_id" if batch else "$.intent_id"
            raise ApiError(409, "intent_id_conflict", f"{where}: {exc}") from None
        except IntentOutOfTime as exc:
            where = f"$.intents[{exc.position}].ts" if batch else "$.ts"
            raise ApiError(422, "invalid", f"{where}: {exc}") from None
        run_id = ctx.run_id
        results = [_result(run_id, record, replayed) for record, replayed in answers]
        if batch:
            return encoder.encode(BatchResult(run_id=run_id, results=results))
        return encoder.encode(results[0])


def front_door(app: ASGIApp, intents: IntentsEndpoint) -> ASGIApp:
    """`app`, except that POST /v1/intents goes straight to `intents`, skipping the
    middleware and the route table (the same endpoint the router would reach)."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"
                and not scope.get("root_path")):
            await intents(scope, receive, send)
        else:
            await app(scope, receive, send)

    return serve
