"""The control plane's HTTP API (ASGI), served by uvicorn.

Why Starlette + msgspec rather than Litestar (or FastAPI): the hot path is one route,
POST /v1/intents, whose cost should be JSON decoding, the engine and the journal flush, not the
framework. Starlette is a thin, stable routing/request layer with a small surface; msgspec
decodes straight into our frozen model structs (strict: unknown fields rejected with the path)
and encodes responses several times faster than pydantic-based stacks. Litestar would give the
same msgspec integration plus DI, DTOs, plugins and its own OpenAPI generator: more surface to
learn and audit than this API needs. We write the OpenAPI document ourselves from the same
msgspec types and one route table (`ROUTES`), so the docs cannot drift from the code. The hot
route itself skips even Starlette's request layer: it is a plain ASGI endpoint (`intents.py`)
that a front door reaches before the router.

Every request is authenticated with `Authorization: Bearer <token>` (see `auth.py`) except
GET / (the dashboard page, which holds no data), /static/*, /v1/health and /v1/openapi.json.
Errors are JSON `{"error", "detail"}`, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from importlib import resources
from typing import Any

import msgspec
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ordergate.engine.commands import COMMAND_REFUSED
from ordergate.journal.base import JournalError
from ordergate.model.decision import Decision
from ordergate.model.events import (
    Alert,
    CancelOrder,
    Command,
    CommandAction,
    Dispatch,
    InputEvent,
    KillScope,
    ModeChanged,
    OutputEvent,
    PolicyDocument,
)
from ordergate.model.market import MarketSnapshot
from ordergate.model.reasons import REGISTRY
from ordergate.model.values import control_character_problem, is_blank
from ordergate.policy.errors import PolicyError
from ordergate.policy.loader import parse_policy
from ordergate.runtime.timebound import snapshot_out_of_time
from ordergate.service import openapi
from ordergate.service.auth import Principal, Role
from ordergate.service.bridge import (
    DecisionRecord,
    Emitted,
    ServiceUnavailable,
    shadow_differs,
)
from ordergate.service.context import (
    JSON,
    ApiError,
    ServiceContext,
    decode_error,
    encoder,
    error_response,
    json_response,
    may_repeat_keys,
    meaning,
    refuse_repeated_keys,
)
from ordergate.service.context import decode as decode_json
from ordergate.service.intents import (
    ASGIApp,
    IntentsEndpoint,
    check_batch_size,
    front_door,
    not_utf8,
    peek_keys,
)
from ordergate.service.metrics import CONTENT_TYPE
from ordergate.service.schemas import (
    CommandResult,
    DecisionPage,
    DecisionView,
    EnableStrategyRequest,
    ErrorBody,
    HaltRequest,
    KillRequest,
    MarketBatch,
    MarketResult,
    ModeRequest,
    PolicyRequest,
    PolicyResult,
    StatusView,
    UnkillRequest,
)

log = structlog.get_logger("ordergate.service")

_snapshot_decoder = msgspec.json.Decoder(MarketSnapshot)
_market_batch_decoder = msgspec.json.Decoder(MarketBatch)
_OUTPUT_TYPES = (Decision, Dispatch, CancelOrder, ModeChanged, Alert)
_HEALTH_TIMEOUT_S = 2.0
_SSE_INTERVAL_S = 1.0


def authenticate(ctx: ServiceContext, request: Request, allowed: frozenset[Role], *,
                 rate_limited: bool = True) -> Principal:
    return ctx.authenticate(request.headers.get("authorization"), allowed,
                            rate_limited=rate_limited)


def decode(body: bytes, type_: type[Any]) -> Any:
    """A request body as `type_` (400 malformed, 422 invalid, naming the field)."""
    try:
        return decode_json(body, type_)
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None


async def read_body(ctx: ServiceContext, request: Request) -> bytes:
    headers = request.headers
    return await ctx.body(request.receive, headers.get("content-length"),
                          headers.get("content-type"))


def engine_outputs(emitted: list[Emitted]) -> list[OutputEvent]:
    """The engine's outputs among what a batch journaled (broker answers left out)."""
    return [item for item in emitted if isinstance(item, _OUTPUT_TYPES)]


Handler = Callable[[ServiceContext, Request], Awaitable[Response]]


def endpoint(ctx: ServiceContext, route: str, handler: Handler) -> Callable[[Request],
                                                                            Awaitable[Response]]:
    observe = ctx.metrics.request_observer(route)

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await handler(ctx, request)
        except ApiError as exc:
            response = error_response(exc)
        except ServiceUnavailable as exc:
            response = error_response(ApiError(503, exc.error, str(exc)))
        observe(response.status_code, time.perf_counter() - started)
        return response

    return run


# ---------------------------------------------------------------- reads


async def get_status(ctx: ServiceContext, request: Request) -> Response:
    authenticate(ctx, request, frozenset({Role.VIEWER, Role.OPERATOR}))
    view = await ctx.bridge.call(ctx.inspector.status_view)
    return json_response(view)


async def get_health(ctx: ServiceContext, request: Request) -> Response:
    try:
        view = await asyncio.wait_for(ctx.bridge.call(ctx.inspector.health_view),
                                      _HEALTH_TIMEOUT_S)
    except (TimeoutError, ServiceUnavailable) as exc:
        detail = str(exc) or "the engine did not answer within 2 s"
        view = ctx.inspector.unavailable_health(detail)
    return json_response(view, 200 if view.ready else 503)


async def get_metrics(ctx: ServiceContext, request: Request) -> Response:
    authenticate(ctx, request, frozenset({Role.VIEWER, Role.OPERATOR}))
    view: StatusView = await ctx.bridge.call(ctx.inspector.status_view)
    ctx.inspector.export_gauges(view, ctx.metrics)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


def _query_time(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = msgspec.json.decode(msgspec.json.encode(raw), type=datetime)
    except msgspec.ValidationError:
        raise ApiError(422, "invalid",
                       f"query {name}: expected an RFC 3339 timestamp, got '{raw}'") from None
    if value.tzinfo is None:
        raise ApiError(422, "invalid", f"query {name}: timestamp must carry a UTC offset ('Z')")
    return value


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    # ASCII digits only (str.isdigit also takes '²' and other scripts' digits) and no more of
    # them than `high` has: int() refuses superscripts and numbers over 4300 digits.
    if (not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high))
            or not low <= int(raw) <= high):
        raise ApiError(422, "invalid",
                       f"query {name}: expected an integer from {low} to {high}, got '{raw}'")
    return int(raw)


def _query_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise ApiError(422, "invalid", f"query {name}: expected true or false, got '{raw}'")
    return raw == "true"


DECISION_FILTERS = ("since", "until", "symbol", "account", "reason", "decision", "monitor",
                    "shadow_differs", "limit", "cursor")


def _check_query(request: Request, accepted: tuple[str, ...]) -> None:
    """Refuse a parameter the route does not know, or one given twice: ignoring it would
    answer a question the caller did not ask (?from=... would list everything)."""
    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted({name for name in names if name not in accepted})
    if unknown:
        listed = ", ".join(f"'{name}'" for name in unknown)
        raise ApiError(422, "invalid",
                       f"query {listed}: unknown parameter{'s' if len(unknown) > 1 else ''}; "
                       f"accepted: {', '.join(accepted)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApiError(422, "invalid",
                       f"query {repeated[0]}: given {names.count(repeated[0])} times; give it "
                       "once")


async def list_decisions(ctx: ServiceContext, request: Request) -> Response:
    authenticate(ctx, request, frozenset({Role.VIEWER, Role.OPERATOR}))
    _check_query(request, DECISION_FILTERS)
    since = _query_time(request, "since")
    until = _query_time(request, "until")
    symbol = request.query_params.get("symbol")
    account = request.query_params.get("account")
    reason = request.query_params.get("reason")
    if reason is not None and reason not in REGISTRY:
        raise ApiError(422, "invalid",
                       f"query reason: unknown reason code '{reason}'; the codes are listed by "
                       "'ordergate reasons' (e.g. EXP-001, THR-006)")
    outcome = request.query_params.get("decision")
    if outcome is not None and outcome not in ("ALLOW", "DENY", "MODIFY"):
        raise ApiError(422, "invalid",
                       f"query decision: expected ALLOW, DENY or MODIFY, got '{outcome}'")
    monitor = _query_bool(request, "monitor")
    differs = _query_bool(request, "shadow_differs")
    limit = _query_int(request, "limit", 100, 1, 1000)
    cursor_raw = request.query_params.get("cursor")
    cursor = None
    if cursor_raw is not None:
        cursor = _query_int(request, "cursor", 0, 1, 2**62)
    items: list[DecisionView] = []
    last_position = None
    index = ctx.bridge.index
    for position, entry in index.newest_first(before=cursor):
        last_position = position
        if since is not None and entry.ts < since:
            continue
        if until is not None and entry.ts >= until:
            continue
        if symbol is not None and entry.symbol != symbol:
            continue
        if account is not None and entry.account != account:
            continue
        if outcome is not None and entry.decision != outcome:
            continue
        if monitor is not None and entry.monitor is not monitor:
            continue
        if differs is not None and entry.shadow_differs is not differs:
            continue  # also when there is no shadow decision (None)
        if reason is not None and entry.blocking != reason and reason not in entry.codes:
            continue
        items.append(_decision_view(entry.record(), ctx.run_id))
        if len(items) == limit:
            break
    next_cursor = None
    if last_position is not None and last_position > index.first_position:
        next_cursor = str(last_position)
    return json_response(DecisionPage(items=items, next_cursor=next_cursor))


def _decision_view(record: DecisionRecord, serving_run_id: str) -> DecisionView:
    # The run that made the decision, as its journal records say (an earlier run's after a
    # restart); the serving run only for a record that does not know its run.
    return DecisionView(intent_id=record.intent.intent_id,
                        run_id=record.run_id or serving_run_id, intent=record.intent,
                        decision=record.decision,
                        blocking_meaning=meaning(record.decision.blocking),
                        shadow=record.shadow, shadow_differs=shadow_differs(record))


async def get_decision(ctx: ServiceContext, request: Request) -> Response:
    principal = authenticate(ctx, request, frozenset({Role.VIEWER, Role.OPERATOR, Role.TRADER}))
    intent_id = request.path_params["intent_id"]
    index = ctx.bridge.index
    record = index.get(intent_id)
    forgotten = False
    if record is None:
        # Decided long ago (the bounded index has let it go) or never decided: the journal says.
        try:
            lookup = await ctx.journal_decisions.get(intent_id, index)
        except JournalError as exc:
            raise ApiError(503, "unavailable",
                           f"the decision for intent_id '{intent_id}' is no longer held in "
                           f"memory and the journal cannot be read: {exc}") from None
        record, forgotten = lookup.record, lookup.forgotten
    if principal.role is Role.TRADER and (record is None
                                          or not principal.can_trade(record.intent.account)):
        # A trader sees only its own accounts' decisions, and cannot probe for others' ids.
        raise ApiError(404, "not_found", f"no decision for intent_id '{intent_id}'")
    if record is None and forgotten:
        raise ApiError(404, "not_found", (
            f"no decision for intent_id '{intent_id}' among those this gateway keeps in "
            "memory; a decision older than that is read from the journal with `ordergate "
            f"decisions --journal JOURNAL --show {intent_id}`"))
    if record is None:
        raise ApiError(404, "not_found", f"no decision for intent_id '{intent_id}'")
    return json_response(_decision_view(record, ctx.run_id))


def events_stream(closing: asyncio.Event) -> Handler:
    """GET /v1/events: the status every `_SSE_INTERVAL_S` until the client leaves or `closing`
    is set. The server sets it when it starts shutting down: it waits for every response to
    complete, and a stream left open would never complete."""

    async def handle(ctx: ServiceContext, request: Request) -> Response:
        authenticate(ctx, request, frozenset({Role.VIEWER, Role.OPERATOR}))

        async def stream() -> AsyncIterator[bytes]:
            while not closing.is_set() and not await request.is_disconnected():
                try:
                    view = await ctx.bridge.call(ctx.inspector.status_view)
                except ServiceUnavailable as exc:
                    yield b"event: error\ndata: " + encoder.encode(str(exc)) + b"\n\n"
                    return
                yield b"event: status\ndata: " + encoder.encode(view) + b"\n\n"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), _SSE_INTERVAL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return handle


# ---------------------------------------------------------------- operator actions


def _checked_reason(reason: str) -> str:
    """An operator's reason, stripped: it is journaled, alerted and shown on terminals, so it
    must say something visible (not only spaces or zero-width characters) and hold no control
    character (a NUL, a line break, a terminal escape sequence)."""
    problem = control_character_problem(reason)
    if problem:
        raise ApiError(422, "invalid",
                       f"reason: {problem}; write the reason on one line in plain words")
    if is_blank(reason):
        raise ApiError(422, "invalid", "reason: must not be blank")
    return reason.strip()


# Actions that only stop trading: never refused by the per-token rate limit (an operator who
# has spent its budget must still be able to halt); authentication and role still apply.
_STOPPING = frozenset({CommandAction.HALT, CommandAction.REDUCE_ONLY, CommandAction.KILL})
_OPERATOR = frozenset({Role.OPERATOR})


def _mode_action(action: CommandAction) -> Handler:
    async def handle(ctx: ServiceContext, request: Request) -> Response:
        principal = authenticate(ctx, request, _OPERATOR,
                                 rate_limited=action not in _STOPPING)
        body = await read_body(ctx, request)
        cancel_all = False
        if action is CommandAction.HALT:
            halt: HaltRequest = decode(body, HaltRequest)
            reason, cancel_all = halt.reason, halt.cancel_all
        else:
            reason = decode(body, ModeRequest).reason
        command = Command(ts=ctx.wall_clock(), action=action, operator=principal.name,
                          reason=_checked_reason(reason), cancel_all=cancel_all)
        log.info("operator_command", action=action.value, operator=principal.name,
                 run_id=ctx.run_id)
        outputs = await ctx.bridge.submit_events([command])
        mode = await ctx.bridge.call(ctx.inspector.mode)
        messages = [getattr(output, "message", "") for output in outputs]
        return json_response(CommandResult(
            run_id=ctx.run_id, action=action.value, operator=principal.name, mode=mode.value,
            outputs=engine_outputs(outputs), message="; ".join(m for m in messages if m),
        ))

    return handle


def _checked_name(name: str, field: str) -> str:
    """An account, strategy or symbol named by an operator: journaled and shown like a
    reason, so no control character and nothing only invisible."""
    problem = control_character_problem(name)
    if problem:
        raise ApiError(422, "invalid", f"{field}: {problem}")
    stripped = name.strip()
    if name and not stripped:
        raise ApiError(422, "invalid", f"{field}: must not be blank")
    return stripped


def _scope_name(scope: KillScope, name: str) -> str:
    key = _checked_name(name, "$.name")
    if scope is KillScope.FIRM and key:
        raise ApiError(422, "invalid",
                       f"$.name: scope firm covers everything; leave name out (got '{key}')")
    if scope is not KillScope.FIRM and not key:
        raise ApiError(422, "invalid",
                       f"$.name: scope {scope.value} needs the {scope.value} it covers")
    return key


async def _operator_command(ctx: ServiceContext, principal: Principal,
                            command: Command) -> Response:
    """Journal and apply one operator command and answer what it did; a command the engine
    refuses (journaled, nothing changed) is a 409 with the engine's words."""
    log.info("operator_command", action=command.action.value, operator=principal.name,
             scope=command.scope.value, key=command.key, run_id=ctx.run_id)
    outputs = await ctx.bridge.submit_events([command])
    refused = [output.message for output in outputs
               if isinstance(output, Alert) and output.code == COMMAND_REFUSED]
    if refused:
        raise ApiError(409, "command_refused",
                       "; ".join(refused) + " (journaled; nothing was changed)")
    mode = await ctx.bridge.call(ctx.inspector.mode)
    messages = [getattr(output, "message", "") for output in outputs]
    return json_response(CommandResult(
        run_id=ctx.run_id, action=command.action.value, operator=principal.name,
        mode=mode.value, outputs=engine_outputs(outputs),
        message="; ".join(m for m in messages if m),
    ))


async def post_kill(ctx: ServiceContext, request: Request) -> Response:
    principal = authenticate(ctx, request, _OPERATOR, rate_limited=False)
    body: KillRequest = decode(await read_body(ctx, request), KillRequest)
    command = Command(ts=ctx.wall_clock(), action=CommandAction.KILL, operator=principal.name,
                      reason=_checked_reason(body.reason), scope=body.scope,
                      key=_scope_name(body.scope, body.name), cancel_all=body.cancel_all)
    return await _operator_command(ctx, principal, command)


async def post_unkill(ctx: ServiceContext, request: Request) -> Response:
    principal = authenticate(ctx, request, _OPERATOR)
    body: UnkillRequest = decode(await read_body(ctx, request), UnkillRequest)
    command = Command(ts=ctx.wall_clock(), action=CommandAction.UNKILL,
                      operator=principal.name, reason=_checked_reason(body.reason),
                      scope=body.scope, key=_scope_name(body.scope, body.name))
    return await _operator_command(ctx, principal, command)


async def post_enable_strategy(ctx: ServiceContext, request: Request) -> Response:
    principal = authenticate(ctx, request, _OPERATOR)
    body: EnableStrategyRequest = decode(await read_body(ctx, request), EnableStrategyRequest)
    strategy = _checked_name(body.strategy, "$.strategy")
    if not strategy:
        raise ApiError(422, "invalid", "$.strategy: must not be blank")
    command = Command(ts=ctx.wall_clock(), action=CommandAction.ENABLE_STRATEGY,
                      operator=principal.name, reason=_checked_reason(body.reason),
                      key=strategy)
    return await _operator_command(ctx, principal, command)


async def post_policy(ctx: ServiceContext, request: Request) -> Response:
    """Enforce a new policy, or with `dry_run` make it the shadow policy: judged for every
    intent beside the enforced one and recorded, never enforced. A dry run never loosens what
    is enforced: the active policy stays exactly as it was until a policy is activated."""
    principal = authenticate(ctx, request, frozenset({Role.OPERATOR}))
    body: PolicyRequest = decode(await read_body(ctx, request), PolicyRequest)
    reason = _checked_reason(body.reason)
    try:
        policy = parse_policy(body.document, source="request.document")
    except PolicyError as exc:
        raise ApiError(422, "invalid_policy", str(exc)) from None
    except RecursionError:
        # The YAML parser recurses once per level: `a: [[[[...` a thousand deep is no policy.
        raise ApiError(422, "invalid_policy",
                       "request.document: nested too deeply to be a policy") from None
    now = ctx.wall_clock()
    action = CommandAction.SHADOW_POLICY if body.dry_run else CommandAction.ACTIVATE_POLICY
    command = Command(ts=now, action=action, operator=principal.name, reason=reason,
                      policy_hash=policy.hash)
    events: list[InputEvent] = [
        PolicyDocument(ts=now, policy_hash=policy.hash, document=policy.document), command,
    ]
    log.info("operator_command", action=command.action.value, operator=principal.name,
             policy_hash=policy.hash, dry_run=body.dry_run, run_id=ctx.run_id)
    outputs = await ctx.bridge.submit_events(events)
    enforced = await ctx.bridge.call(ctx.inspector.policy_hash)
    shadow = await ctx.bridge.call(ctx.inspector.shadow_policy_hash)
    activated = not body.dry_run and enforced == policy.hash
    if body.dry_run:
        if shadow == policy.hash:
            message = (f"dry run: policy {policy.name} {policy.hash} is the shadow policy: "
                       "every intent is also judged under it and its would-be decision "
                       "recorded beside the real one; the enforced policy "
                       f"{enforced or '(none)'} is unchanged and still decides. Post the "
                       "same document without dry_run to enforce it")
        else:
            message = "the engine did not install it as the shadow policy"
    elif not activated:
        said = [str(getattr(output, "message", "")) for output in outputs]
        message = "; ".join(["the engine did not activate it", *filter(None, said)])
    else:
        message = "activated" + (" (the policy itself sets monitor: true; its limits are "
                                 "not enforced)" if policy.monitor else "")
    return json_response(PolicyResult(
        run_id=ctx.run_id, policy_hash=policy.hash, name=policy.name, activated=activated,
        monitor=policy.monitor, message=message, outputs=engine_outputs(outputs),
        dry_run=body.dry_run, document_hash=policy.hash, shadow_policy_hash=shadow,
        enforced_policy_hash=enforced,
    ))


# ---------------------------------------------------------------- market data


def _check_market_time(snapshots: list[MarketSnapshot], batch: bool, now: datetime) -> None:
    """Refuse a request holding a snapshot stamped more than MAX_TS_AHEAD ahead of the
    server's clock: event time never goes back, so one quote from 2099 would leave every
    other quote stale and every later intent denied. Old snapshots are harmless (journaled
    and ignored when older than the symbol's latest)."""
    for position, snapshot in enumerate(snapshots):
        problem = snapshot_out_of_time(snapshot.ts, now)
        if problem is not None:
            where = f"$.snapshots[{position}].ts" if batch else "$.ts"
            raise ApiError(422, "invalid", f"{where}: {problem}")


async def post_market(ctx: ServiceContext, request: Request) -> Response:
    authenticate(ctx, request, frozenset({Role.FEEDER, Role.OPERATOR}))
    body = await read_body(ctx, request)
    if not body:
        raise ApiError(400, "malformed_json", "request body is empty; expected a JSON object")
    try:
        keys = peek_keys(body)
        batch = "snapshots" in keys
        if batch:
            check_batch_size(keys["snapshots"], "snapshots", ctx.max_batch)
        snapshots = (_market_batch_decoder.decode(body).snapshots if batch
                     else [_snapshot_decoder.decode(body)])
    except msgspec.DecodeError as exc:
        raise decode_error(exc) from None
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None
    if may_repeat_keys(body):
        refuse_repeated_keys(body)
    _check_market_time(snapshots, batch, ctx.wall_clock())
    events: list[InputEvent] = list(snapshots)
    outputs = await ctx.bridge.submit_events(events)
    mode = await ctx.bridge.call(ctx.inspector.mode)
    return json_response(MarketResult(run_id=ctx.run_id, accepted=len(events), mode=mode.value,
                                      outputs=engine_outputs(outputs)))


# ---------------------------------------------------------------- assembly


HANDLERS: dict[str, Handler] = {
    "get_status": get_status,
    "get_health": get_health,
    "get_metrics": get_metrics,
    "list_decisions": list_decisions,
    "get_decision": get_decision,
    "mode_reduce_only": _mode_action(CommandAction.REDUCE_ONLY),
    "mode_halt": _mode_action(CommandAction.HALT),
    "mode_resume": _mode_action(CommandAction.RESUME),
    "post_policy": post_policy,
    "end_dry_run": _mode_action(CommandAction.SHADOW_POLICY),  # no policy hash: clears it
    "post_market": post_market,
    "post_kill": post_kill,
    "post_unkill": post_unkill,
    "enable_strategy": post_enable_strategy,
}


def _static_dir() -> str:
    return str(resources.files("ordergate.service") / "static")


def create_app(ctx: ServiceContext, *, closing: asyncio.Event | None = None) -> ASGIApp:
    """The ASGI app. The caller owns `ctx.bridge` (start it before serving, stop it after).
    `closing`: set when the server starts shutting down, it ends every open event stream
    (none: they end only when their clients leave)."""
    intents = IntentsEndpoint(ctx)
    return front_door(starlette_app(ctx, intents, closing=closing), intents)


def starlette_app(ctx: ServiceContext, intents: IntentsEndpoint, *,
                  closing: asyncio.Event | None = None) -> Starlette:
    """Every route, POST /v1/intents included, behind Starlette's router and error handling
    (`create_app` serves this with the front door in front)."""
    handlers = {**HANDLERS, "events_stream": events_stream(closing or asyncio.Event())}
    routes: list[BaseRoute] = []
    for spec in openapi.ROUTES:
        if spec.operation == "post_intents":
            routes.append(Route(spec.path, intents, methods=[spec.method]))
        else:
            routes.append(Route(spec.router_path,
                                endpoint(ctx, spec.path, handlers[spec.operation]),
                                methods=[spec.method]))
    document = encoder.encode(openapi.document())

    async def get_openapi(request: Request) -> Response:
        return Response(document, media_type=JSON)

    async def index(request: Request) -> Response:
        return FileResponse(f"{_static_dir()}/index.html",
                            headers={"Cache-Control": "no-store"})

    routes.append(Route("/v1/openapi.json", get_openapi, methods=["GET"]))
    routes.append(Route("/", index, methods=["GET"]))
    routes.append(Mount("/static", app=StaticFiles(directory=_static_dir()), name="static"))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return json_response(ErrorBody(error="http_error", detail=str(exc.detail)),
                             exc.status_code, dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("request_failed", path=request.url.path, error=type(exc).__name__)
        return json_response(ErrorBody(error="internal", detail="internal error; see the log"),
                             500)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error,
                                                        Exception: unexpected})
    return app

