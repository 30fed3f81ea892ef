"""Invariant 1, single dispatch chokepoint: only `runtime/dispatch.py` calls a broker
adapter's submit/cancel.

The test walks the AST of every module under src/ordergate and fails on any use (a call, a
bound-method reference, or `getattr(x, "submit")`) of an attribute named `submit`, `cancel`
or `cancel_all` outside `runtime/dispatch.py` and `brokers/` (the adapters themselves),
unless the exact receiver expression is whitelisted below with the reason it is not a
broker adapter. A new call site therefore fails until someone looks at it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ordergate

PACKAGE = Path(ordergate.__file__).parent
NAMES = frozenset({"submit", "cancel", "cancel_all"})
EXEMPT_FILES = frozenset({"runtime/dispatch.py"})
EXEMPT_DIRS = ("brokers/",)

# (module path relative to the package, receiver expression) -> why it is not a broker call.
WHITELIST: dict[tuple[str, str], str] = {
    ("runtime/loop.py", "dispatcher"): "the Dispatcher itself: the chokepoint's own API",
    ("runtime/loop.py", "self.dispatcher"): "the Dispatcher itself: the chokepoint's own API",
    ("client.py", "_Api"): "builds an HTTP request to the gateway's own intent API",
    ("gateway.py", "gateway"): "submits an intent to the gateway (engine, then Dispatcher)",
    ("gateway.py", "self._gateway"): "submits an intent to the gateway (engine, then "
                                     "Dispatcher)",
    ("cli/drill_cmd.py", "gw"): "submits an intent to the gateway (engine, then Dispatcher)",
    ("engine/commands.py", "command"): "reads the Command event's `cancel_all` flag",
    ("service/app.py", "halt"): "reads the halt request body's `cancel_all` flag",
    ("service/app.py", "body"): "reads the kill request body's `cancel_all` flag",
    ("evidence/replay.py", "pool"): "a process pool running the journal's chain check",
    ("service/alerts.py", "deliveries"): "the webhook sink's asyncio task that starts alert "
                                         "deliveries",
    ("service/alerts.py", "task"): "an asyncio task delivering one alert to the webhook",
}


def offending_uses(source: str, relative: str) -> list[str]:
    """Every use of submit/cancel/cancel_all in `source` that is neither exempt nor
    whitelisted, as 'path:line: receiver.name'."""
    if relative in EXEMPT_FILES or relative.startswith(EXEMPT_DIRS):
        return []
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=relative)):
        if isinstance(node, ast.Attribute) and node.attr in NAMES:
            receiver = ast.unparse(node.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "getattr" and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in NAMES):
            receiver = ast.unparse(node.args[0])
        else:
            continue
        if (relative, receiver) in WHITELIST:
            continue
        name = node.attr if isinstance(node, ast.Attribute) else node.args[1].value  # type: ignore[attr-defined]
        found.append((node.lineno, f"{relative}:{node.lineno}: {receiver}.{name}"))
    return [text for _, text in sorted(found)]


def test_only_the_dispatcher_calls_broker_submit_or_cancel() -> None:
    offenders: list[str] = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert any(path.name == "dispatch.py" for path in modules)
    for path in modules:
        relative = path.relative_to(PACKAGE).as_posix()
        offenders.extend(offending_uses(path.read_text(encoding="utf-8"), relative))
    assert not offenders, (
        "broker submit/cancel outside runtime/dispatch.py (route it through the Dispatcher, "
        "or whitelist the receiver with a reason):\n" + "\n".join(offenders))


def test_the_dispatcher_really_calls_the_broker() -> None:
    source = (PACKAGE / "runtime" / "dispatch.py").read_text(encoding="utf-8")
    calls = {
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and ast.unparse(node.func.value) == "self._broker"
    }
    assert {"submit", "cancel"} <= calls


def test_the_walk_catches_calls_references_and_getattr() -> None:
    source = (
        "def f(broker, order):\n"
        "    broker.submit(order)\n"
        "    send = broker.cancel\n"
        "    getattr(broker, 'cancel_all')()\n"
        "    dispatcher.submit(order)\n"
    )
    found = offending_uses(source, "service/somewhere.py")
    assert found == [
        "service/somewhere.py:2: broker.submit",
        "service/somewhere.py:3: broker.cancel",
        "service/somewhere.py:4: broker.cancel_all",
        "service/somewhere.py:5: dispatcher.submit",
    ]
    assert offending_uses(source, "brokers/sim.py") == []
    assert offending_uses(source, "runtime/dispatch.py") == []
