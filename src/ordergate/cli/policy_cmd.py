"""`ordergate policy ...`: validate a policy, print its hash, export its JSON Schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ordergate.cli.console import err, out, plain
from ordergate.cli.errors import UserError
from ordergate.cli.policy_flags import years_ending_warning
from ordergate.policy import Policy, PolicyError, load_policy, policy_schema

policy_app = typer.Typer(help="Validate, hash and describe policy files.", no_args_is_help=True)

PolicyFile = Annotated[Path, typer.Argument(help="The policy YAML file.", show_default=False)]

_OVERRIDE_SECTIONS = (("accounts", "account"), ("strategies", "strategy"),
                      ("symbols", "symbol"))


def _load(path: Path) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise UserError(str(exc)) from exc


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and set(value) == {"max", "window"}:
        return f"{value['max']} per {value['window']}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{key}={_text(item)}" for key, item in sorted(value.items()))
    return str(value)


def _limits_table(document: dict[str, Any]) -> Table:
    defaults: dict[str, Any] = document.get("defaults", {})
    fields = set(defaults)
    for section, _ in _OVERRIDE_SECTIONS:
        for entry in document.get(section, {}).values():
            fields.update(entry)
    table = Table(title="Limits (overrides: account -> strategy -> symbol, most specific wins)",
                  title_justify="left")
    table.add_column("limit")
    table.add_column("default")
    table.add_column("overrides", overflow="fold")
    for field in sorted(fields):
        overrides = [
            f"{scope} {key}: {_text(entry[field])}"
            for section, scope in _OVERRIDE_SECTIONS
            for key, entry in sorted(document.get(section, {}).items())
            if field in entry
        ]
        table.add_row(field, plain(_text(defaults[field])) if field in defaults
                      else "(not set)", plain("; ".join(overrides)))
    return table


def _summary(policy: Policy) -> None:
    document = policy.document
    metadata = document["metadata"]
    out.print(f"Policy {metadata['name']!r}: valid", markup=False)
    if metadata.get("description"):
        out.print(f"  {metadata['description']}", markup=False)
    engine = policy.engine
    lines = [
        ("effective from", metadata.get("effective_from", "(not set)")),
        ("monitor (dry run)", _text(policy.monitor)),
        ("kill switch", "ENGAGED" if policy.kill_switch else "off"),
        ("require instrument", _text(document.get("require_instrument", False))),
        ("restricted symbols", _text(document.get("restricted_symbols", []))),
        ("canary symbols", _text(document.get("canary_symbols", [])) if
         document.get("canary_symbols") else "(none: no canary restriction)"),
        ("cancel all on kill", _text(engine.cancel_all_on_kill)),
        ("fault modes", f"stale data -> {engine.on_stale_data}, bad data -> "
                        f"{engine.on_bad_data}, clock -> {engine.on_clock_fault}, dependency "
                        f"down -> {engine.on_dependency_down}, reconciliation -> "
                        f"{engine.on_reconciliation_mismatch}, drawdown -> {engine.on_drawdown}"),
        ("resume needs two operators", _text(engine.resume_requires_two_operators)),
        ("automatic reset window", document.get("engine", {}).get("reset_window", "(none)")),
        ("day rolls at", f"{engine.day_roll_calendar} close" if engine.day_roll_calendar
         else "00:00 UTC"),
    ]
    hours = document.get("market_hours")
    if hours:
        first, last = hours["years"]
        lines.append(("market hours", f"{', '.join(hours['symbols'])} trade only in "
                                      f"{hours['calendar']} sessions ({first}-{last})"))
    else:
        lines.append(("market hours", "(none)"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        out.print(f"  {label.ljust(width)}  {value}", markup=False)
    instruments = document.get("instruments", {})
    if instruments:
        table = Table(title="Instruments", title_justify="left")
        for column in ("symbol", "tick size", "lot size"):
            table.add_column(column)
        for symbol, spec in sorted(instruments.items()):
            table.add_row(plain(symbol), plain(spec.get("tick_size", "-")),
                          plain(spec.get("lot_size", "-")))
        out.print(table)
    out.print(_limits_table(document))
    out.print(f"hash: {policy.hash}", markup=False)


@policy_app.command("check")
def check(file: PolicyFile) -> None:
    """Validate a policy and print what it enforces, then its hash. Exit 1 with the file,
    line, field and fix when it is invalid. Warn when its market hours run out before the
    end of next year."""
    policy = _load(file)
    _summary(policy)
    warning = years_ending_warning(policy, file, datetime.now(UTC).year + 1)
    if warning is not None:
        err.print(warning, style="bold yellow", markup=False, highlight=False, soft_wrap=True)


@policy_app.command("hash")
def hash_(file: PolicyFile) -> None:
    """Print the policy hash (sha256 over the canonical normalized document)."""
    out.print(_load(file).hash, markup=False)


@policy_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the policy format (for editors and CI)."""
    out.print(json.dumps(policy_schema(), indent=2, sort_keys=True), markup=False,
              soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
