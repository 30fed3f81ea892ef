"""Generated documentation: produced from the code itself so it cannot drift.

Each generator returns Markdown. The mkdocs hook (`docs/hooks.py`) replaces a marker line
`<!-- gen:NAME -->` in a page with `render(NAME)` at every build, so the published reference is
always the code's own:

* `policy`: every policy field, from the JSON Schema of `ordergate policy schema`;
* `reasons`: the reason-code registry (`ordergate reasons`);
* `cli`: every command and option of the `ordergate` typer app;
* `http`: every route and body of the OpenAPI document (`GET /v1/openapi.json`);
* `bench`: the figures in bench/results/*.json.

`python docs/gen.py NAME` prints one of them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_RESULTS = ROOT / "bench" / "results"
EXAMPLE_POLICY = ROOT / "examples" / "policy.yaml"

# Words for schema fields whose type carries no description of its own. A field that has
# neither a description nor an entry here fails the docs test: new fields get documented.
FIELD_NOTES: dict[str, str] = {
    "PolicySpec.apiVersion": "Always `ordergate/v1`.",
    "PolicySpec.kind": "Always `Policy`.",
    "PolicySpec.metadata": "Name, description and effective date of this policy version.",
    "PolicySpec.monitor": "Dry run: evaluate and record every rule, but ALLOW. Kill switches "
                          "(KIL), the trading mode (MOD), a client order id or intent id "
                          "already in use (DUP-001, DUP-003) and data or system integrity "
                          "(SYS, CLK-002, CLK-003) still deny. The decision says what an "
                          "enforcing policy would do; a cancel over `cancel_rate` is sent and "
                          "`drawdown_kill` halts nothing (an alert says what each would do).",
    "PolicySpec.kill_switch": "Deny every new order at once (KIL-001).",
    "PolicySpec.engine": "Settings the engine acts on: which mode each fault moves to, resets.",
    "PolicySpec.require_instrument": "Deny symbols without an `instruments` entry (SYS-004).",
    "PolicySpec.instruments": "Tick and lot size per symbol (ORD-004, ORD-005).",
    "PolicySpec.restricted_symbols": "Symbols never to trade (ORD-009).",
    "PolicySpec.canary_symbols": "When not empty, only these symbols may trade (MKT-002).",
    "PolicySpec.market_hours": "Symbols that trade only while an exchange calendar is in "
                               "session (MKT-001).",
    "PolicySpec.defaults": "Limits for every account, strategy and symbol.",
    "PolicySpec.accounts": "Per-account overrides of `defaults`.",
    "PolicySpec.strategies": "Per-strategy overrides (more specific than accounts).",
    "PolicySpec.symbols": "Per-symbol overrides (the most specific).",
    "Metadata.name": "The policy's name; shown in status, decisions and the journal.",
    "Metadata.description": "Free text for reviewers.",
    "Metadata.effective_from": "When this version takes effect (RFC 3339, UTC).",
    "EngineSpec.cancel_all_on_kill": "Cancel working orders in scope when a kill switch "
                                     "engages.",
    "EngineSpec.day_roll_calendar": "Exchange calendar (e.g. XNYS) whose session close rolls "
                                    "the trading day; unset rolls at 00:00 UTC.",
    "EngineSpec.on_bad_data": "Mode on NaN, zero, negative or crossed market data.",
    "EngineSpec.on_clock_fault": "Mode when the clock drifts or has no reference.",
    "EngineSpec.on_dependency_down": "Mode when a critical dependency is down.",
    "EngineSpec.on_drawdown": "Mode on a drawdown breach (with `drawdown_kill`).",
    "EngineSpec.on_reconciliation_mismatch": "Mode when positions or orders disagree with the "
                                             "broker.",
    "EngineSpec.on_stale_data": "Mode when market data is older than `max_market_data_age`.",
    "EngineSpec.reset_window": "Loosen automatically after the last automatic reason has been "
                               "clear this long; unset: only an operator resumes.",
    "EngineSpec.resume_requires_two_operators": "After a drawdown halt, two different "
                                                "operators must each resume.",
    "MarketHours.calendar": "An exchange_calendars code such as XNYS.",
    "MarketHours.symbols": "The symbols bound to the calendar.",
    "MarketHours.years": "First and last year for which sessions are resolved at load.",
    "InstrumentSpec.lot_size": "Quantities must be a multiple of it (ORD-005).",
    "InstrumentSpec.tick_size": "Prices must be a multiple of it (ORD-004).",
    "Throttle.max": "At most this many orders...",
    "Throttle.window": "...in any sliding window of this length.",
    "Limits.allowed_order_types": "Order types a strategy may send (ORD-001).",
    "Limits.cancel_rate": "Cancels per window per account (THR-005).",
    "Limits.drawdown_kill": "A drawdown breach trips `engine.on_drawdown` (HALTED by default).",
    "Limits.duplicate_window": "The same order twice within this window is denied (DUP-002).",
    "Limits.exposure_modify": "Shrink an order to fit an exposure cap (MODIFY) instead of "
                              "denying it.",
    "Limits.market_collar_pct": "Market orders: the far side of the quote (ask for a buy, bid "
                                "for a sell) within this % of the reference price (ORD-008). "
                                "Stop orders the market has already reached (they trigger "
                                "at once): the same, as market orders. "
                                "Unset: `price_collar_pct` applies; never greater than it.",
    "Limits.max_daily_loss": "Absolute loss today at which new risk stops (LOS-001).",
    "Limits.max_daily_loss_pct": "Loss today in % of day-start equity (LOS-002).",
    "Limits.max_drawdown_pct": "Fall from the high-water mark in % (LOS-003).",
    "Limits.max_firm_gross_exposure": "Firm-wide gross exposure across every gateway, from the "
                                      "shared store (EXP-005).",
    "Limits.max_gross_exposure": "Account gross exposure cap (EXP-003).",
    "Limits.max_intent_skew": "How far an intent's timestamp may be from event time (CLK-001).",
    "Limits.max_market_data_age": "Oldest usable quote (SYS-002). It has no safe default: "
                                  "`defaults` must set it, else the policy is refused at load "
                                  "(`defaults: missing required field 'max_market_data_age'`), "
                                  "whatever the accounts, strategies or symbols set; they may "
                                  "override it.",
    "Limits.max_net_exposure": "Account net exposure cap (EXP-004).",
    "Limits.max_order_qty": "Largest quantity of one order (ORD-006).",
    "Limits.max_order_value": "Largest value of one order (ORD-007); a stop order is valued "
                              "at the larger of its stop price and the reference price.",
    "Limits.max_position_qty": "Largest position, working orders included (EXP-001).",
    "Limits.max_position_value": "Largest position value, working orders included (EXP-002).",
    "Limits.max_volume_participation_pct": "Largest share of the symbol's traded volume "
                                           "(LIQ-001).",
    "Limits.price_collar_pct": "Limit prices within this % of the reference price (ORD-008); "
                               "market orders too, unless `market_collar_pct` is tighter.",
    "Limits.rate_account": "Orders per window per account (THR-002).",
    "Limits.rate_global": "Orders per window across the gateway (THR-001).",
    "Limits.rate_strategy": "Orders per window per strategy (THR-003).",
    "Limits.rate_symbol": "Orders per window per symbol (THR-004).",
    "Limits.repeated_execution": "This many fills (executions, partial ones included) of one "
                                 "strategy in one account within the window, across all its "
                                 "symbols, disable that strategy in that account until an "
                                 "operator re-enables it (THR-006); the count starts again at the "
                                 "re-enable. The limits are read for the symbol of the fill that "
                                 "reaches the count.",
    "Limits.self_match": "An order that would trade against the same account's own working "
                         "orders (ORD-010): `deny` refuses it, `cancel_resting` allows it and "
                         "cancels those orders (named in the decision). Counted: limit orders "
                         "at their limit, working market orders (they cross any order on the "
                         "other side), and stop orders once a fill shows they triggered (an "
                         "untriggered stop-loss is not on the book).",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- policy


def _type_of(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_of(option) for option in prop["anyOf"])
    kind = prop.get("type")
    if prop.get("format") == "decimal":
        return "decimal"
    if prop.get("pattern", "").endswith("(ms|s|m|h|d)$"):
        return "duration"
    if kind == "array":
        items = prop.get("items", {})
        if "prefixItems" in prop:
            return "[" + ", ".join(_type_of(item) for item in prop["prefixItems"]) + "]"
        return f"list of {_type_of(items)}"
    if kind == "object":
        values = prop.get("additionalProperties")
        if isinstance(values, dict):
            return f"map of name → {_type_of(values)}"
        return "object"
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind or "any")


def _example_values() -> dict[str, Any]:
    """Field name → a value from the example policy (examples/policy.yaml), for the examples
    column."""
    from ruamel.yaml import YAML

    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(value, dict) or key in {"rate_global", "rate_account",
                                                          "rate_strategy", "rate_symbol",
                                                          "cancel_rate", "repeated_execution"}:
                    found.setdefault(str(key), value)
                walk(value)

    if EXAMPLE_POLICY.is_file():
        walk(YAML(typ="safe").load(EXAMPLE_POLICY.read_text(encoding="utf-8")))
    return found


def _example(name: str, prop: dict[str, Any], examples: dict[str, Any]) -> str:
    if prop.get("type") == "object" or "$ref" in prop:
        return ""  # sections: see their own table
    if name in examples:
        value = examples[name]
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(str(item) for item in value) + "]"
        return str(value).lower() if isinstance(value, bool) else str(value)
    if prop.get("examples"):
        return str(prop["examples"][0])
    if "enum" in prop:
        return str(prop["enum"][0])
    return ""


def policy_fields() -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(section, field, property schema, required) for every field of every section."""
    from ordergate.policy.loader import policy_schema

    schema = policy_schema()
    for section, definition in sorted(schema["$defs"].items()):
        required = set(definition.get("required", []))
        for field, prop in sorted(definition.get("properties", {}).items()):
            yield section, field, prop, field in required


def missing_field_docs() -> list[str]:
    """Fields with neither a schema description nor a note above."""
    return [f"{section}.{field}" for section, field, prop, _ in policy_fields()
            if not prop.get("description") and f"{section}.{field}" not in FIELD_NOTES]


def render_policy() -> str:
    from ordergate.policy.loader import policy_schema

    schema = policy_schema()
    examples = _example_values()
    # Fields `defaults` must set (the schema marks them on the `defaults` property itself,
    # since accounts, strategies and symbols use the same Limits without requiring them).
    required_in_defaults = set(schema["$defs"]["PolicySpec"]["properties"]["defaults"]
                               .get("required", []))
    order = ["PolicySpec", "Metadata", "EngineSpec", "Limits", "Throttle", "InstrumentSpec",
             "MarketHours"]
    defs = schema["$defs"]
    sections = order + sorted(name for name in defs if name not in order)
    out = [f"Generated from the policy JSON Schema ({len(defs)} definitions). "
           "Get the schema itself with `ordergate policy schema`."]
    for name in sections:
        definition = defs[name]
        out += ["", f"### {name}", ""]
        if definition.get("description"):
            out += [" ".join(definition["description"].split()), ""]
        if "enum" in definition:
            out.append("One of: " + ", ".join(f"`{value}`" for value in definition["enum"]))
            continue
        required = set(definition.get("required", []))
        rows = []
        for field, prop in sorted(definition.get("properties", {}).items()):
            note = FIELD_NOTES.get(f"{name}.{field}", "")
            text = note or " ".join(prop.get("description", "").split())
            default = prop.get("default", "required" if field in required else "unset")
            if name == "Limits" and field in required_in_defaults:
                default = "required in defaults"
            if isinstance(default, bool):
                default = str(default).lower()
            rows.append([f"`{field}`", _type_of(prop), f"`{default}`" if default != "" else "",
                         text, f"`{_example(field, prop, examples)}`"
                         if _example(field, prop, examples) else ""])
        out.append(_table(["field", "type", "default", "meaning", "example"], rows))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- reasons


def render_reasons() -> str:
    from ordergate.model.reasons import all_reasons

    rows = [[f"`{code.id}`", f"`{code.name}`", code.family.value, code.severity.value,
             str(code.precedence), code.meaning] for code in all_reasons()]
    return (f"{len(rows)} codes, in precedence order (the first violated one is the blocking "
            "reason). Generated from the registry; `ordergate reasons` prints the same.\n\n"
            + _table(["id", "name", "family", "severity", "precedence", "meaning"], rows) + "\n")


# ---------------------------------------------------------------- cli


def _commands(group: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    for name in group.commands:
        command = group.commands[name]
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            yield from _commands(command, path)
        else:
            yield path, command


def _param_type(param: Any, ctx: Any) -> str:
    """The parameter's type as --help shows it (typer's own click, or click's)."""
    kind = getattr(param, "type", None)
    if kind is not None:
        return str(kind.name)
    shown = str(param.display_type(ctx)).strip("<>")
    return shown.replace("|", " | ")


def _envvar_note(param: Any) -> str:
    """" Default from $NAME." for an option that reads an environment variable."""
    names = getattr(param, "envvar", None)
    if not names:
        return ""
    names = [names] if isinstance(names, str) else list(names)
    return " Default from " + " or ".join(f"`${name}`" for name in names) + "."


def render_cli() -> str:
    import typer.main

    from ordergate.cli.main import app

    root = typer.main.get_command(app)
    out = ["Generated from the `ordergate` command itself; `ordergate COMMAND --help` prints "
           "the same. Exit codes: 0 success, 1 a policy/data error you can fix, 2 usage, "
           "3 a safety stop."]
    for path, command in _commands(root, "ordergate"):
        ctx = command.make_context(path, ["--help"], resilient_parsing=True)
        out += ["", f"### `{path}`", ""]
        if command.help:
            out += [" ".join(command.help.split()), ""]
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        options = [p for p in command.params if p.param_type_name == "option"]
        usage = path + "".join(f" {p.name.upper()}" for p in arguments)
        if options:
            usage += " [OPTIONS]"
        out += ["```text", usage, "```"]
        rows = []
        for param in arguments:
            rows.append([f"`{param.name.upper()}`", _param_type(param, ctx),
                         "required" if param.required
                         else "", getattr(param, "help", "") or ""])
        for param in options:
            flags = ", ".join(f"`{flag}`" for flag in [*param.opts, *param.secondary_opts])
            default = "" if param.required else (
                "" if param.default is None or param.default == ""
                or (param.is_flag and not param.default)
                else f"`{param.default}`")
            rows.append([flags, _param_type(param, ctx), "required" if param.required else default,
                         (param.help or "") + _envvar_note(param)])
        if rows:
            out += ["", _table(["parameter", "type", "default", "meaning"], rows)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- http

# The routes the Python HTTP client (`ordergate.Client`, `ordergate.AsyncClient`, same method
# names) sends, and by which methods. tests/docs checks it against the client: every public
# method is listed and sends the route listed here.
CLIENT_METHODS: dict[str, tuple[str, ...]] = {
    "POST /v1/intents": ("submit", "submit_batch"),
    "GET /v1/status": ("status",),
    "GET /v1/health": ("health",),
    "GET /v1/decisions": ("decisions", "iter_decisions"),
    "GET /v1/decisions/{intent_id}": ("decision",),
    "POST /v1/mode/reduce-only": ("reduce_only",),
    "POST /v1/mode/halt": ("halt",),
    "POST /v1/mode/resume": ("resume",),
    "POST /v1/policy": ("activate_policy",),
    "POST /v1/policy/dry-run/end": ("end_dry_run",),
}


def _client_note(method: str, path: str) -> str:
    methods = CLIENT_METHODS.get(f"{method.upper()} {path}")
    if not methods:
        return "Python client: no method; send it with any HTTP client (curl, httpx)."
    return "Python client: " + ", ".join(f"`Client.{name}()`" for name in methods) + \
        " (and the same on `AsyncClient`)."


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in prop:
        return " or ".join(_schema_type(option) for option in prop["anyOf"])
    if "enum" in prop:
        return " \\| ".join(f"`{value}`" for value in prop["enum"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    if prop.get("format"):
        return f"{kind} ({prop['format']})"
    return str(kind)


def render_http() -> str:
    from ordergate.service.openapi import document

    doc = document()
    out = [f"Generated from the OpenAPI {doc['openapi']} document (API version "
           f"{doc['info']['version']}) that a running gateway serves at `GET /v1/openapi.json`. "
           "Authenticate with `Authorization: Bearer <token>`; errors are JSON "
           "`{\"error\", \"detail\"}`."]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            roles = ", ".join(operation.get("x-roles", [])) or "none (public)"
            out += ["", f"### `{method.upper()} {path}`", "",
                    operation.get("description", operation.get("summary", "")), "",
                    f"Roles: {roles}. {_client_note(method, path)}"]
            if operation.get("parameters"):
                rows = [[f"`{p['name']}`", p["in"], _schema_type(p["schema"]),
                         p.get("description", "")] for p in operation["parameters"]]
                out += ["", _table(["parameter", "in", "type", "meaning"], rows)]
            if "requestBody" in operation:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                out += ["", f"Request body: {_schema_type(schema)}."]
            answers = []
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                body = ""
                for media, spec in content.items():
                    body = (_schema_type(spec["schema"]) if media == "application/json"
                            else f"`{media}`")
                answers.append([status, response["description"], body])
            out += ["", _table(["status", "meaning", "body"], answers)]
    out += ["", "## Schemas"]
    for name, schema in doc["components"]["schemas"].items():
        out += ["", f"### {name}", ""]
        if schema.get("description"):
            out += [" ".join(schema["description"].split()), ""]
        if "enum" in schema:
            out.append("One of: " + ", ".join(f"`{value}`" for value in schema["enum"]))
            continue
        required = set(schema.get("required", []))
        rows = [[f"`{field}`", _schema_type(prop), "yes" if field in required else "",
                 " ".join(prop.get("description", "").split())]
                for field, prop in schema.get("properties", {}).items()]
        if rows:
            out.append(_table(["field", "type", "required", "meaning"], rows))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- bench


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list):
        for item in node:
            name = item.get("name") if isinstance(item, dict) else None
            if name is None:
                continue
            yield from _leaves({k: v for k, v in item.items() if k != "name"},
                               f"{prefix}.{name}")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield prefix, node


_SKIP = ("machine", "python", "sizes", "targets", "quick", "when", "platform", "cpus",
         "statuses", "decisions", "batch", "payload_bytes", "symbols", "positions",
         "limit_fields_set", "concurrency", "intents_per_request", "requests", "seconds")


def render_bench() -> str:
    files = sorted(BENCH_RESULTS.glob("*.json"))
    if not files:
        return "No benchmark results yet: run the benchmarks (see below).\n"
    out: list[str] = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        name = data.get("benchmark", path.stem)
        command = data.get("command", f"python -m bench.bench_{path.stem}")
        machine = data.get("machine")
        where = ""
        if isinstance(machine, dict):
            where = f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
        elif machine:
            where = f"{machine}, {data.get('cpus', '?')} CPUs, Python {data.get('python', '?')}"
        out += ["", f"### {name}", "",
                f"From `bench/results/{path.name}`" + (f" ({where})" if where else "") +
                f". Reproduce: `{command}` (add `--quick` for a short run)."]
        if data.get("quick"):
            out += ["", "!!! warning \"Quick run\"",
                    "    These figures come from a `--quick` run; re-run without it for "
                    "the published numbers."]
        rows = [[f"`{key}`", f"{value:,}" if isinstance(value, int) else f"{value:,.3f}"]
                for key, value in _leaves(data)
                if not any(part in _SKIP for part in key.split("."))]
        targets = data.get("targets")
        out += ["", _table(["measure", "value"], rows)]
        if isinstance(targets, dict):
            out += ["", "Targets: " + ", ".join(f"`{k}` {v}" for k, v in targets.items()) + "."]
    return "\n".join(out).lstrip() + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "policy": render_policy,
    "reasons": render_reasons,
    "cli": render_cli,
    "http": render_http,
    "bench": render_bench,
}


def render(name: str) -> str:
    return GENERATORS[name]()


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in GENERATORS:
        sys.exit(f"usage: python docs/gen.py {{{'|'.join(GENERATORS)}}}")
    sys.stdout.write(render(sys.argv[1]))
