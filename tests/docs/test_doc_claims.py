"""What the prose pages say about the product is what the product does: each test holds one
claim of a page (or of a generated reference) against the code or a real run."""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))

import gen  # noqa: E402


def words(path: Path) -> str:
    """A page's text with line breaks and runs of spaces folded, so a quoted message that
    wraps across lines still reads as one."""
    return " ".join(path.read_text(encoding="utf-8").split())


def test_readme_says_status_url_shows_no_working_orders_and_status_journal_does() -> None:
    from ordergate.service.schemas import StatusView

    assert "open_orders" not in StatusView.__struct_fields__  # what `status --url` reads
    rows = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and "ordergate status" in line]
    remote = [row for row in rows if "status --url" in row]
    journal = [row for row in rows if "status --journal" in row]
    assert remote and journal
    assert all("no working-orders table" in row and "--journal" not in row.split("|")[2]
               for row in remote), remote
    assert any("working (open) orders" in row for row in journal), journal


class _Sent(Exception):
    """Raised instead of sending: the request is all we look at."""


def _sent_route(client_cls: type, name: str) -> str:
    """The route one client method sends (recorded, not sent)."""
    sent: list[Any] = []
    client: Any = object.__new__(client_cls)

    def record(call: Any) -> Any:
        sent.append(call)
        raise _Sent

    client._send = record
    intent = {"intent_id": "i", "ts": "2026-03-02T14:30:00Z", "account": "A",
              "strategy": "s", "symbol": "AAPL", "side": "buy", "qty": "1"}
    arguments: dict[str, tuple[Any, ...]] = {
        "submit": (intent,), "submit_batch": ([intent],), "decision": ("i",),
        "halt": ("why",), "reduce_only": ("why",), "resume": ("why",),
        "end_dry_run": ("why",), "activate_policy": ("apiVersion: ordergate/v1\n", "why"),
    }
    with pytest.raises(_Sent):
        getattr(client, name)(*arguments.get(name, ()))
    call = sent[0]
    path = re.sub(r"^/v1/decisions/.+", "/v1/decisions/{intent_id}", call.path)
    return f"{call.method} {path}"


def _client_methods(client_cls: type) -> set[str]:
    return {name for name in vars(client_cls)
            if not name.startswith("_") and name not in {"close"}}


def test_the_http_reference_names_the_client_method_of_every_route_it_wraps() -> None:
    from ordergate.client import AsyncClient, Client
    from ordergate.service.openapi import ROUTES

    listed = {name for names in gen.CLIENT_METHODS.values() for name in names}
    assert _client_methods(Client) == listed
    assert _client_methods(AsyncClient) == listed
    for route, names in gen.CLIENT_METHODS.items():
        for name in names:
            if name == "iter_decisions":
                continue  # pages through `decisions`
            assert _sent_route(Client, name) == route, name
    known = {f"{route.method} {route.path}" for route in ROUTES}
    assert set(gen.CLIENT_METHODS) <= known
    http = gen.render_http()
    for spec in ROUTES:
        section = http.split(f"### `{spec.method} {spec.path}`", 1)[1].split("###", 1)[0]
        assert "Python client:" in section, spec.path
    intro = words(DOCS / "reference" / "http.md")
    assert "wraps every route" not in intro
    for route in known - set(gen.CLIENT_METHODS):
        assert f"`{route}`" in intro, f"{route}: the page should say the client has no method"


def test_the_policy_reference_says_max_market_data_age_is_required_in_defaults() -> None:
    from ordergate import PolicyError, parse_policy

    text = ("apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: t}\n"
            "defaults: {max_order_qty: 5}\naccounts:\n  A: {max_market_data_age: 1s}\n")
    with pytest.raises(PolicyError) as refused:
        parse_policy(text)
    quoted = "defaults: missing required field 'max_market_data_age'"
    assert quoted in str(refused.value)
    row = next(line for line in gen.render_policy().splitlines()
               if line.startswith("| `max_market_data_age`"))
    assert "`required in defaults`" in row and quoted in row and "SYS-005" not in row


def test_the_policy_reference_says_yaml_numbers_are_read_exactly() -> None:
    from ordergate import Policy, PolicyError, parse_policy

    def limits(line: str) -> Any:
        return parse_policy("apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: t}\n"
                            f"defaults:\n  max_market_data_age: 1s\n  {line}\n"
                            ).limits_for("a", "s", "x")

    assert limits("max_order_qty: 1.5").max_order_qty == Decimal("1.5")
    assert limits("max_order_qty: 1e3").max_order_qty == Decimal(1000)
    assert limits("max_order_qty: 0.1").max_order_qty == Decimal("0.1")
    with pytest.raises(PolicyError, match=r"rate_global\.max: expected a whole number"):
        limits("rate_global: {max: 1.5, window: 1s}")
    with pytest.raises(PolicyError, match="float"):
        Policy.from_document({"apiVersion": "ordergate/v1", "kind": "Policy",
                              "metadata": {"name": "t"},
                              "defaults": {"max_market_data_age": "1s", "max_order_qty": 1.5}})
    page = words(DOCS / "reference" / "policy.md")
    assert "a float where an exact decimal is needed" not in page
    assert "`1e3` are the exact decimals" in page and "`Policy.from_document`" in page


def test_the_tokens_errors_quoted_in_deployment_are_the_real_ones() -> None:
    from ordergate.service.auth import TokenFileError, parse_tokens

    page = words(DOCS / "deployment.md")
    entry = {"name": "screen", "role": "viewer", "hash": "sha256:" + "0" * 64}
    for accounts in (5, ["ACC-1"]):
        document = msgspec.json.encode({"tokens": [{**entry, "accounts": accounts}]}).decode()
        with pytest.raises(TokenFileError) as refused:
            parse_tokens(document, "ORDERGATE_TOKENS")
        assert str(refused.value) in page, str(refused.value)


def test_the_health_reference_names_every_check(tmp_path: Path) -> None:
    from ordergate import Gateway
    from ordergate.service.status import Inspector, ModeTimeline

    gateway = Gateway.open("apiVersion: ordergate/v1\nkind: Policy\nmetadata: {name: t}\n"
                           "defaults: {max_market_data_age: 1s}\n", tmp_path / "j.db")
    try:
        inspector = Inspector(gateway._runtime, ModeTimeline())
        checks = set(inspector.health_view().checks)
    finally:
        gateway.close()
    checks |= set(Inspector.unavailable_health("down").checks)
    page = words(DOCS / "reference" / "http.md")
    said = re.search(r"one check per part \(([^)]*)\)", page)
    assert said is not None
    assert set(re.findall(r"`(\w+)`", said.group(1))) == checks


def test_the_cli_reference_names_the_environment_variable_of_every_option() -> None:
    import typer.main

    from ordergate.cli.main import app

    cli = gen.render_cli()
    names = {param.envvar for _, command in gen._commands(typer.main.get_command(app), "x")
             for param in command.params if getattr(param, "envvar", None)}
    assert {"ORDERGATE_REDIS_URL", "ORDERGATE_REDIS_PREFIX"} <= names
    for name in names:
        assert f"`${name}`" in cli, name


def test_every_broker_and_simulator_setting_is_documented() -> None:
    from ordergate.brokers.config import BrokerConfig
    from ordergate.brokers.sim import SimConfig

    deployment = (DOCS / "deployment.md").read_text(encoding="utf-8")
    concepts = (DOCS / "concepts.md").read_text(encoding="utf-8")
    for field in BrokerConfig.__struct_fields__:
        assert f"`{field}`" in deployment or f"{field}:" in deployment, field
    for field in SimConfig.__struct_fields__:
        assert f"`{field}`" in concepts, field
