"""The route table of the HTTP API and the OpenAPI 3.1 document generated from it.

One `RouteSpec` per endpoint says its method, path, who may call it and which msgspec types it
reads and writes; `app.create_app` registers exactly these routes, and `document()` turns the
same table plus the types' JSON schemas into /v1/openapi.json.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ordergate.model.intent import OrderIntent
from ordergate.model.market import MarketSnapshot
from ordergate.service.schemas import (
    BatchResult,
    CommandResult,
    DecisionPage,
    DecisionView,
    EnableStrategyRequest,
    ErrorBody,
    HaltRequest,
    HealthView,
    IntentBatch,
    IntentResult,
    KillRequest,
    MarketBatch,
    MarketResult,
    ModeRequest,
    PolicyRequest,
    PolicyResult,
    StatusView,
    UnkillRequest,
)

API_VERSION = "1.0.0"


class Param(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    where: str  # query | path
    description: str
    schema: dict[str, Any]
    required: bool = False
    # A path parameter whose values may hold '/': it takes the rest of the path, and the
    # router decodes %2F (and %2E for '.' or '..') back into the value.
    rest_of_path: bool = False


class RouteSpec(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    operation: str
    summary: str
    roles: tuple[str, ...]  # empty = no authentication
    request: tuple[Any, ...] = ()  # one type, or several alternatives (anyOf)
    response: tuple[Any, ...] = ()
    response_type: str = "application/json"
    ok_status: int = 200
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()

    @property
    def router_path(self) -> str:
        """`path` as the router matches it: `{name:path}` for a parameter that takes the rest of
        the path (the OpenAPI document keeps `{name}`)."""
        path = self.path
        for param in self.params:
            if param.where == "path" and param.rest_of_path:
                path = path.replace(f"{{{param.name}}}", f"{{{param.name}:path}}")
        return path


_TIME = {"type": "string", "format": "date-time"}
_READ = ("viewer", "operator")
_OPS = ("operator",)

_FEED = ("feeder", "operator")

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec(
        method="POST", path="/v1/intents", operation="post_intents", roles=("trader",),
        summary="Submit one intent, or a batch {\"intents\": [...]} of up to 1000. Each intent "
                "is journaled, decided and, when allowed, dispatched; the answer comes after "
                "the batch is durable. Idempotent on intent_id: a retry returns the original "
                "decision with replayed=true and never sends a second order; an intent_id "
                "already used for a different intent is refused with 409 and nothing of the "
                "request is done. A trader token may only submit for its own accounts. A new "
                "intent's ts must be within the policy's max_intent_skew (when set, else 5 s) "
                "ahead of the server's clock and at most 24 h behind it, or the request is "
                "refused with 422 naming $.ts (or $.intents[i].ts) before anything is "
                "journaled; a retry of an intent already decided gets its decision whatever "
                "its ts.",
        request=(OrderIntent, IntentBatch), response=(IntentResult, BatchResult),
        errors=(400, 401, 403, 409, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="GET", path="/v1/status", operation="get_status", roles=_READ,
        summary="Mode and every active reason (code, meaning, since, who), positions, exposure "
                "vs caps, rate-window utilisation, dependencies and breakers, journal lag, "
                "policy hash, mode timeline. The enforced policy is identified by policy_name "
                "and policy_hash (SHA-256 of its normalized document, the same hash every "
                "decision and journal record cites); policies define no other profile notion. "
                "policy_monitor is true when that policy itself sets monitor: true (limits "
                "evaluated and recorded but not enforced). shadow_policy_hash and "
                "shadow_policy_name name the policy of a dry run (empty when none): judged "
                "for every intent beside the enforced one, never enforced. recent_alerts lists "
                "the latest critical and warning alerts the engine journaled (code, plain "
                "words, time). Once the journal could not be written, mode reads STOPPED: "
                "nothing is taken until a restart on a healthy journal, and the timeline ends "
                "with that stop, marked journaled: false.",
        response=(StatusView,), errors=(401, 403, 429, 503),
    ),
    RouteSpec(
        method="GET", path="/v1/health", operation="get_health", roles=(),
        summary="Liveness and readiness (journal writable, broker reachable, data fresh). "
                "200 when ready, 503 when not.",
        response=(HealthView,), errors=(503,),
    ),
    RouteSpec(
        method="GET", path="/metrics", operation="get_metrics", roles=_READ,
        summary="Prometheus metrics.",
        response_type="text/plain; version=0.0.4", errors=(401, 403, 429, 503),
    ),
    RouteSpec(
        method="GET", path="/v1/decisions", operation="list_decisions", roles=_READ,
        summary="Recent decisions, newest first, filtered and paginated (pass next_cursor "
                "as cursor for the next page). An unknown or repeated query parameter, or an "
                "unknown reason code, is refused with 422 naming it.",
        response=(DecisionPage,), errors=(401, 403, 422, 429),
        params=(
            Param(name="since", where="query", schema=_TIME,
                  description="Only intents with ts >= since (RFC 3339)."),
            Param(name="until", where="query", schema=_TIME,
                  description="Only intents with ts < until (RFC 3339)."),
            Param(name="symbol", where="query", schema={"type": "string"},
                  description="Only this symbol."),
            Param(name="account", where="query", schema={"type": "string"},
                  description="Only this account."),
            Param(name="reason", where="query", schema={"type": "string"},
                  description="Only decisions with this reason code (blocking or violated)."),
            Param(name="decision", where="query",
                  schema={"enum": ["ALLOW", "DENY", "MODIFY"]},
                  description="Only this outcome."),
            Param(name="monitor", where="query", schema={"enum": ["true", "false"]},
                  description="true: only decisions made under a policy that sets monitor: "
                              "true (ALLOW with would_block naming what an enforcing policy "
                              "would have done); false: only enforced decisions."),
            Param(name="shadow_differs", where="query", schema={"enum": ["true", "false"]},
                  description="Only intents judged during a policy dry run: true, those "
                              "whose shadow decision (decision, blocking code or modified "
                              "quantity) differs from the enforced one; false, those where "
                              "both agree."),
            Param(name="limit", where="query",
                  schema={"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                  description="Page size."),
            Param(name="cursor", where="query",
                  schema={"type": "string", "pattern": "^[0-9]+$"},
                  description="next_cursor of the previous page."),
        ),
    ),
    RouteSpec(
        method="GET", path="/v1/decisions/{intent_id}", operation="get_decision",
        roles=("viewer", "operator", "trader"),
        summary="The full decision record of one intent (a trader sees its own accounts only). "
                "During a policy dry run, `shadow` holds what the dry-run policy would have "
                "answered from the same state, beside the enforced `decision`, and "
                "`shadow_differs` says whether the two outcomes differ. A decision the "
                "gateway's index no longer holds is read back from the journal (503 when "
                "the journal cannot be read): the gateway remembers the intent_id and "
                "journal position of up to 5 million such decisions, the newest; an older "
                "one is answered 404 saying so, and `ordergate decisions --journal JOURNAL "
                "--show INTENT_ID` reads it from the journal.",
        response=(DecisionView,), errors=(401, 403, 404, 429, 503),
        params=(Param(name="intent_id", where="path", required=True,
                      schema={"type": "string", "minLength": 1, "maxLength": 128},
                      description="The intent's id, percent-encoded as one path segment: an "
                                  "id may hold '/' (send %2F), and an id that is '.' or '..' "
                                  "is sent as %2E or %2E%2E.",
                      rest_of_path=True),),
    ),
    RouteSpec(
        method="GET", path="/v1/events", operation="events_stream", roles=_READ,
        summary="Server-sent events: an `event: status` with the StatusView every second.",
        response_type="text/event-stream", errors=(401, 403, 429),
    ),
    RouteSpec(
        method="POST", path="/v1/mode/reduce-only", operation="mode_reduce_only", roles=_OPS,
        summary="Tighten to REDUCE_ONLY. Journaled as a Command with the operator's identity. "
                "Never refused by the per-token rate limit.",
        request=(ModeRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 413, 415, 422, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/mode/halt", operation="mode_halt", roles=_OPS,
        summary="HALT trading; cancel_all also cancels every working order. Never refused by "
                "the per-token rate limit: an operator can always stop trading.",
        request=(HaltRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 413, 415, 422, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/mode/resume", operation="mode_resume", roles=_OPS,
        summary="Resume (loosen) the mode. The reason is required; when the policy requires "
                "it for a drawdown halt, two different operators must each resume.",
        request=(ModeRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/kill", operation="post_kill", roles=_OPS,
        summary="Engage a kill switch: no new risk for the firm, an account, a strategy or a "
                "symbol (scope and name) until an operator releases it; cancel_all also "
                "cancels every working order in the scope. Journaled as a kill Command with "
                "the operator's identity and reason. Never refused by the per-token rate "
                "limit.",
        request=(KillRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 413, 415, 422, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/unkill", operation="post_unkill", roles=_OPS,
        summary="Release the kill switch of one scope (scope and name as it was engaged). "
                "Journaled as an unkill Command with the operator's identity and reason; 409 "
                "when no kill switch is engaged for that scope (nothing changes).",
        request=(UnkillRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 409, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/strategies/enable", operation="enable_strategy", roles=_OPS,
        summary="Re-enable a strategy the engine disabled after repeated executions "
                "(THR-006), in every account where it is disabled. Journaled as an "
                "enable_strategy Command with the operator's identity and reason; 409 when "
                "the strategy is not disabled (nothing changes).",
        request=(EnableStrategyRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 409, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/market", operation="post_market", roles=_FEED,
        summary="Feed market data: one MarketSnapshot, or a batch {\"snapshots\": [...]} of "
                "up to 1000, journaled and applied in order (marks, data-integrity checks, "
                "drawdown). The answer comes after the batch is durable and lists what it "
                "caused (mode changes, alerts). Snapshots older than the symbol's latest are "
                "journaled and ignored; a request holding a snapshot stamped more than 5 s "
                "ahead of the server's clock is refused with 422 naming its ts.",
        request=(MarketSnapshot, MarketBatch), response=(MarketResult,),
        errors=(400, 401, 403, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/policy", operation="post_policy", roles=_OPS,
        summary="Validate and activate a new policy (YAML text). The reason is required "
                "(422 naming it when missing or blank) and journaled with the operator's "
                "identity as the activate_policy command's. With dry_run: true the policy "
                "becomes the shadow policy instead (journaled with a shadow_policy command "
                "naming the operator and the reason): the enforced policy stays exactly as it "
                "was and still decides every intent, while each intent is also judged under "
                "the new policy from the same state and that would-be decision recorded (see "
                "GET /v1/decisions/{intent_id} and the shadow_differs filter). The answer has "
                "dry_run=true, activated=false, policy_hash and shadow_policy_hash (the "
                "submitted policy) and enforced_policy_hash. Post the same document without "
                "dry_run to enforce it; that ends the dry run.",
        request=(PolicyRequest,), response=(PolicyResult,),
        errors=(400, 401, 403, 413, 415, 422, 429, 503),
    ),
    RouteSpec(
        method="POST", path="/v1/policy/dry-run/end", operation="end_dry_run", roles=_OPS,
        summary="End a policy dry run without enforcing its policy: intents are no longer "
                "judged under the shadow policy; the enforced policy is untouched. Journaled "
                "as a shadow_policy command (empty policy hash) with the operator's identity "
                "and reason. Ending when no dry run is running changes nothing.",
        request=(ModeRequest,), response=(CommandResult,),
        errors=(400, 401, 403, 413, 415, 422, 429, 503),
    ),
)

_STATUS_TEXT = {
    400: "Malformed JSON", 401: "Missing or invalid bearer token",
    403: "The token's role or accounts do not allow this", 404: "Not found",
    409: "A conflict: the intent_id already names a different intent, or the engine "
         "refused the command (the detail says why)",
    413: "Body or batch too large", 415: "Content-Type is not application/json",
    422: "Invalid field, or a key given twice in one object (the detail names its path)",
    429: "Rate limited (see Retry-After)",
    503: "Not durable or not ready: nothing was done; except error `decided_not_answered`: "
         "the batch was decided and durable (its orders may have been sent) but the answer "
         "failed: read GET /v1/decisions/{intent_id}",
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API."""
    types: list[Any] = [ErrorBody]
    for route in ROUTES:
        types.extend(tp for tp in (*route.request, *route.response) if tp not in types)
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, schemas, strict=True))

    def schema_of(alternatives: tuple[Any, ...]) -> dict[str, Any]:
        if len(alternatives) == 1:
            return dict(by_type[alternatives[0]])
        return {"anyOf": [by_type[tp] for tp in alternatives]}

    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "operationId": route.operation,
            "summary": route.summary.split(". ")[0],
            "description": route.summary,
            "security": [{"bearer": []}] if route.roles else [],
            "x-roles": list(route.roles),
            "responses": {},
        }
        if route.params:
            operation["parameters"] = [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "description": p.description, "schema": p.schema}
                for p in route.params
            ]
        if route.request:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": schema_of(route.request)}}}
        ok: dict[str, Any] = {"description": "OK"}
        if route.response:
            ok["content"] = {route.response_type: {"schema": schema_of(route.response)}}
        else:
            ok["content"] = {route.response_type: {"schema": {"type": "string"}}}
        operation["responses"][str(route.ok_status)] = ok
        for status in route.errors:
            operation["responses"][str(status)] = {
                "description": _STATUS_TEXT[status],
                "content": {"application/json": {"schema": by_type[ErrorBody]}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    paths["/v1/openapi.json"] = {"get": {
        "operationId": "get_openapi", "summary": "This document.", "security": [],
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"type": "object"}}}}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ordergate control plane", "version": API_VERSION,
            "description": "Pre-trade risk gateway: submit intents, read status and decisions, "
                           "change the trading mode. Roles: trader submits intents for its "
                           "accounts, operator changes modes and policies, viewer reads, "
                           "feeder posts market data.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
