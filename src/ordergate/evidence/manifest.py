"""The run manifest: what was running when a journal was written.

At the start of every `run` / `serve` (when `Runtime.open` has recovered) the runtime
journals a META record with the manifest and writes the same JSON next to a file journal
(`<journal>.manifest.json`, the latest run's): timestamp, ordergate version, git commit when
the package runs from a checkout, Python and key dependency versions, host, execution mode,
policy hash, the broker (venue and endpoint, or the simulator's settings), enabled features,
canary symbols, the journal's location and durability, and the command line.

Secrets never reach it: every mapping key matching token|secret|password|key|authorization
has its value replaced by `***`, passwords in URLs are replaced, a webhook URL (an option or
key naming a webhook) keeps only its scheme, host and port (its user, password, path and
query may all be the secret), and broker credentials are `Secret`s that print as `***`.
A test proves it.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ordergate.journal import Journal, RecordKind, redact_url
from ordergate.journal.urls import Backend, parse_journal_url
from ordergate.policy.loader import Policy

log = structlog.get_logger(__name__)

MANIFEST_PREFIX = b'{"type":"evidence.manifest"'
REDACTED = "***"
SECRET_KEY = re.compile(r"token|secret|password|passwd|key|authorization|credential",
                        re.IGNORECASE)
WEBHOOK_KEY = re.compile(r"web_?hook", re.IGNORECASE)
KEY_DEPENDENCIES = (
    "msgspec", "typer", "rich", "structlog", "ruamel.yaml", "exchange-calendars", "psycopg",
    "redis", "starlette", "uvicorn", "httpx", "prometheus-client", "polars", "pyarrow",
    "alpaca-py", "ccxt", "matplotlib",
)


class RunManifest(msgspec.Struct, frozen=True, kw_only=True, tag="evidence.manifest",
                  tag_field="type"):
    started_at: datetime
    run_id: str
    command: list[str]
    ordergate_version: str
    git_commit: str = ""
    python: str
    platform: str
    dependencies: dict[str, str]
    host: str
    execution_mode: str
    policy_name: str
    policy_hash: str
    broker: dict[str, Any]
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    features: list[str]
    canary_symbols: list[str]
    journal: str
    durability: str


_encoder = msgspec.json.Encoder(order="deterministic")
_decoder = msgspec.json.Decoder(RunManifest)


# ---------------------------------------------------------------- redaction


def redact_text(text: str) -> str:
    """Passwords inside any URL in `text` replaced by `***` (`redact_url` reads the whole
    text: a password may hold a space)."""
    return redact_url(text)


def redact_webhook_url(url: str) -> str:
    """What logs and errors may show of a webhook URL: its scheme, host and port. A user and
    password (or a token as the user), the path and the query become `***`: webhook services
    put their secret in any of them (`?token=...`, Slack's `/services/T../B../secret`). Works on
    URLs that do not parse, too."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    ends = [index for index in (rest.find(char) for char in "/?#") if index >= 0]
    cut = min(ends, default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    if tail not in ("", "/"):
        tail = "/***"
    return f"{scheme}{separator}{authority}{tail}"


def redact(value: Any) -> Any:
    """A JSON-ready copy of `value` with secrets replaced: values under keys that look like
    credentials, passwords in URLs, and anything that is not plain data (a `Secret`)."""
    if isinstance(value, Mapping):
        return {str(key): _redact_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [redact(item) for item in items]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray | os.PathLike):  # a path: its text
        return redact_text(os.fsdecode(value if isinstance(value, os.PathLike)
                                       else bytes(value)))
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, msgspec.Struct):
        # Sets sorted here: as lists `redact` keeps their order, which for a set of strings
        # (the simulator's order types) would be PYTHONHASHSEED's.
        return redact(msgspec.to_builtins(value, str_keys=True, builtin_types=(bytes, bytearray),
                                          enc_hook=_path_text, order="deterministic"))
    # Decimals, datetimes, enums print exactly; a Secret prints as '***'.
    return REDACTED if type(value).__name__ == "Secret" else str(value)


def _redact_item(key: str, item: Any) -> Any:
    if SECRET_KEY.search(key) and item not in (None, "", False):
        return REDACTED
    if WEBHOOK_KEY.search(key) and isinstance(item, str):
        return redact_webhook_url(item)
    return redact(item)


def _path_text(value: Any) -> str:
    """A path in a config struct (a field typed `str` given a `Path`) is written as its text
    (bytes too, in `redact`: msgspec would write them as base64)."""
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    raise NotImplementedError(f"cannot record a {type(value).__name__} in the manifest")


def redact_argv(argv: Sequence[str]) -> list[str]:
    """The command line with the value after any secret-looking option (and `--x=value`
    forms) replaced, the value of a webhook option (`--webhook URL`, `--webhook=URL`, an
    `ORDERGATE_WEBHOOK_URL=URL` assignment) cut to its scheme, host and port, and URL
    passwords removed."""
    cleaned: list[str] = []
    hide_next = False
    webhook_next = False
    for arg in argv:
        if hide_next:
            cleaned.append(REDACTED)
            hide_next = False
            continue
        if webhook_next:
            cleaned.append(redact_webhook_url(arg))
            webhook_next = False
            continue
        name, sep, value = arg.partition("=")
        if arg.startswith("--") and SECRET_KEY.search(name):
            if sep:
                cleaned.append(f"{name}={REDACTED}")
            else:
                cleaned.append(arg)
                hide_next = True
            continue
        if WEBHOOK_KEY.search(name) and (sep or arg.startswith("-")):
            if sep:
                cleaned.append(f"{name}={redact_webhook_url(value)}")
            else:
                cleaned.append(arg)
                webhook_next = True
            continue
        cleaned.append(redact_text(arg))
    return cleaned


# ---------------------------------------------------------------- facts about the process


def git_commit(start: Path | None = None) -> str:
    """The commit of the checkout the package runs from, read from `.git` without running
    git; "" when not in a checkout or the ref cannot be read."""
    here = (start or Path(__file__)).resolve()
    for directory in (here, *here.parents):
        git = directory / ".git"
        if not git.is_dir():
            continue
        try:
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head.removeprefix("ref: ")
            loose = git / ref
            if loose.is_file():
                return loose.read_text().strip()
            packed = git / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
        except OSError:
            return ""
        return ""
    return ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def dependency_versions(names: Iterable[str] = KEY_DEPENDENCIES) -> dict[str, str]:
    return {name: version for name in names if (version := _version(name))}


def _broker_facts(broker: Any) -> tuple[str, dict[str, Any]]:
    """(execution mode, configuration) of a broker adapter, from what it exposes: the
    simulator its config; a real adapter its venue (`kind`), its endpoint (`base_url`) and,
    when it says, whether it trades on paper (`paper`). Credentials are never read."""
    name = str(getattr(broker, "name", type(broker).__name__))
    facts: dict[str, Any] = {"name": name, "adapter": type(broker).__name__}
    config = getattr(broker, "config", None)
    if isinstance(config, msgspec.Struct):
        facts["config"] = redact(config)
    if type(broker).__name__ == "SimBroker":
        return "paper (simulated broker)", facts
    base_url = getattr(broker, "base_url", None)
    if isinstance(base_url, str) and base_url:
        facts["kind"] = name
        facts["base_url"] = redact_text(base_url)
    paper = getattr(broker, "paper", None)
    if isinstance(paper, bool):
        return ("paper" if paper else "live"), facts
    return "unknown", facts


def _features(policy: Policy) -> list[str]:
    spec = policy.spec
    engine = policy.engine
    found = {
        "monitor": policy.monitor,
        "kill_switch": policy.kill_switch,
        "canary": bool(engine.canary_symbols),
        "restricted_symbols": bool(spec.restricted_symbols),
        "market_hours": "market_hours" in policy.document,
        "cancel_all_on_kill": engine.cancel_all_on_kill,
        "two_operator_resume": engine.resume_requires_two_operators,
        "reset_window": engine.reset_window is not None,
        "day_roll_calendar": engine.day_roll_calendar is not None,
    }
    return [name for name, enabled in found.items() if enabled]


def build_manifest(journal: Journal, policy: Policy, broker: Any, *,
                   started_at: datetime | None = None, argv: Sequence[str] | None = None,
                   config: Mapping[str, Any] | None = None,
                   features: Iterable[str] = ()) -> RunManifest:
    mode, broker_facts = _broker_facts(broker)
    return RunManifest(
        started_at=started_at or datetime.now(UTC),
        run_id=journal.run_id,
        command=redact_argv(list(sys.argv if argv is None else argv)),
        ordergate_version=_version("ordergate") or "unknown",
        git_commit=git_commit(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        dependencies=dependency_versions(),
        host=socket.gethostname(),
        execution_mode=mode,
        policy_name=policy.name,
        policy_hash=policy.hash,
        broker=broker_facts,
        config=redact(dict(config or {})),
        features=sorted({*_features(policy), *features}),
        canary_symbols=sorted(policy.engine.canary_symbols),
        journal=redact_url(journal.url),
        durability=str(journal.durability),
    )


# ---------------------------------------------------------------- journal and file


def manifest_path(journal_url: str) -> Path | None:
    """`<journal file>.manifest.json` for a file journal; None for a database journal."""
    location = parse_journal_url(journal_url)
    if location.backend is not Backend.SQLITE or location.target in ("", ":memory:"):
        return None
    return Path(location.target + ".manifest.json")


def encode_manifest(manifest: RunManifest) -> bytes:
    return _encoder.encode(manifest)


def decode_manifest(payload: bytes) -> RunManifest | None:
    if not payload.startswith(MANIFEST_PREFIX):
        return None
    try:
        return _decoder.decode(payload)
    except msgspec.ValidationError:
        return None


def record_manifest(journal: Journal, manifest: RunManifest, *,
                    path: Path | None = None) -> Path | None:
    """Journal the manifest (META, flushed) and write it as JSON to `path` (default: next to
    a file journal). Returns the file written, if any. A file that cannot be written is
    logged, not fatal: the journal copy is the record."""
    payload = encode_manifest(manifest)
    journal.append(RecordKind.META, payload)
    journal.flush()
    target = path if path is not None else manifest_path(journal.url)
    if target is None:
        return None
    try:
        target.write_bytes(msgspec.json.format(payload, indent=2) + b"\n")
    except OSError as exc:
        log.warning("manifest_file_not_written", path=str(target), error=str(exc))
        return None
    return target


def read_manifests(journal: Journal) -> list[RunManifest]:
    """Every run manifest in the journal, oldest first."""
    return [
        manifest for record in journal.read()
        if record.kind is RecordKind.META
        for manifest in [decode_manifest(record.payload)] if manifest is not None
    ]
