"""`--broker sim|FILE` for the commands that talk to a broker (`run`, `serve`, `gateway`):
the simulator, a simulator config file, or the adapter a broker config file describes (paper
or live; live needs its explicit confirmation), checked at start-up against the order types
the policy allows.

A simulator config file is YAML with one top-level `sim` section holding any of the
simulator's settings (unknown keys are errors, named with their path)::

    sim:
      fill_model: immediate        # or next_market
      slippage_bps: "1"
      fee_bps: "0.5"
      max_participation_pct: "10"  # at most 10 % of each snapshot's volume (partial fills)
      ack_latency: 50ms            # durations as in policies: 250ms, 2s, 1m; or 0
      fill_latency: 0
      reject_every_nth: 0          # planned rejects: every Nth order, these symbols,
      reject_symbols: [GME]        # or a seeded share of all orders
      reject_probability: 0.0
      seed: 7

`ordergate demo` writes the one it trades with, so `ordergate run --broker FILE` replays the
day exactly.

A broker config file is YAML with one top-level `broker` section (docs/deployment.md); its
errors name the file and the field (`broker.timeout_s`), never with a stack trace.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ordergate.brokers.base import BrokerAdapter
from ordergate.cli.errors import UserError
from ordergate.journal import redact_url
from ordergate.policy.spec import parse_duration

if TYPE_CHECKING:
    from ruamel.yaml.constructor import DuplicateKeyError

    from ordergate.brokers.sim import SimConfig

SIM_SECTION = "sim"
BROKER_SECTION = "broker"
_BROKER_EXAMPLE = """\
    broker:
      broker: alpaca                  # sim | alpaca | deribit | tradier
      execution_mode: paper           # paper | live
      account: ACC-1
      api_key_env: ALPACA_API_KEY_ID  # NAMES of environment variables
      api_secret_env: ALPACA_API_SECRET_KEY"""
_DURATIONS = ("ack_latency", "fill_latency", "clock_offset")


def _read_yaml(spec: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import ComposerError
    from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.parser import ParserError
    from ruamel.yaml.reader import ReaderError
    from ruamel.yaml.scanner import ScannerError

    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--broker {spec}: expected 'sim', a simulator config file or a broker "
                        "config YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--broker {spec}: cannot read the file: {exc}") from None
    try:
        return YAML(typ="safe").load(text)
    except DuplicateKeyError as exc:
        raise UserError(f"--broker {spec}: {_duplicate_key(text, exc)}") from None
    except ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        raise UserError(f"--broker {spec}: not valid YAML at line {line}: it holds character "
                        f"#x{exc.character:04x}, a control character YAML does not allow"
                        ) from None
    except YAMLError as exc:
        # The parser's own message quotes the offending line, which may hold a credential
        # pasted where an environment variable's name belongs: say only where it is.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        # These are the errors an unquoted special character causes ('!' an unknown tag).
        hint = ("; a value starting with '@', '`', '[', '{', '*', '&', '!' or holding ': ' "
                "needs quotes" if isinstance(
                    exc, ScannerError | ParserError | ComposerError | ConstructorError)
                else "")
        raise UserError(f"--broker {spec}: not valid YAML{at} (the line is not shown{hint})"
                        ) from None


def _duplicate_key(text: str, exc: DuplicateKeyError) -> str:
    """'duplicate key NAME at line N (first on line M); keep only one'. The parser's own message
    quotes both values, which may be credentials: the key is found again in the node tree."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

    mark = exc.problem_mark
    line = mark.line if mark is not None else -1

    def search(node: Node | None) -> str | None:
        if isinstance(node, MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    if key.value in first and key.start_mark.line == line:
                        return (f"duplicate key '{key.value}' at line {line + 1} (first"
                                f" defined on line {first[key.value] + 1}); keep only one")
                    first.setdefault(key.value, key.start_mark.line)
                found = search(value)
                if found is not None:
                    return found
        elif isinstance(node, SequenceNode):
            for item in node.value:
                found = search(item)
                if found is not None:
                    return found
        return None

    found = search(YAML(typ="safe").compose(text))
    return found or f"duplicate key at line {line + 1}; keep only one"


def sim_config_for(spec: str) -> SimConfig | None:
    """The simulator's config for `--broker sim` (the defaults) or a simulator config file;
    None for a broker config file. A bad simulator file is a UserError naming the field."""
    from ordergate.brokers.sim import SimConfig

    if spec == "sim":
        return SimConfig()
    raw = _read_yaml(spec)
    if not isinstance(raw, dict) or SIM_SECTION not in raw:
        return None
    extra = sorted(str(key) for key in raw if key != SIM_SECTION)
    if extra:
        raise UserError(f"{spec}: {extra[0]}: unknown key (a simulator config file "
                        f"holds only the '{SIM_SECTION}' section)")
    return parse_sim_config(raw[SIM_SECTION], source=f"{spec}: {SIM_SECTION}")


def parse_sim_config(section: Any, source: str = SIM_SECTION) -> SimConfig:
    """A SimConfig from a mapping (the `sim` section); errors name `source` and the field."""
    from ordergate.brokers.sim import SimConfig

    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise UserError(f"{source}: expected a mapping of simulator settings, got "
                        f"{type(section).__name__}")
    values = dict(section)
    for field in _DURATIONS:
        if field in values:
            values[field] = _duration(values[field], f"{source}.{field}")
    try:
        return msgspec.convert(values, SimConfig, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `$." in message:
            what, where = message.rsplit(" - at `$.", 1)
            raise UserError(f"{source}.{where.rstrip('`')}: {what}") from None
        unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
        if unknown:
            raise UserError(f"{source}.{unknown.group(1)}: unknown key (simulator settings: "
                            f"{', '.join(SimConfig.__struct_fields__)})") from None
        raise UserError(f"{source}.{message}") from None  # __post_init__ names the field


def _duration(value: Any, where: str) -> Any:
    """'250ms', '2s', '-1s' (a clock offset may be negative) or 0 -> a timedelta."""
    from datetime import timedelta

    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    if isinstance(value, str):
        text = value.strip()
        sign = -1 if text.startswith("-") else 1
        try:
            return sign * parse_duration(text.removeprefix("-"))
        except ValueError:
            pass
    raise UserError(f"{where}: expected a duration such as 250ms, 2s or 1m (or 0), "
                    f"got {value!r}")


def broker_from_spec(spec: str, policy: Any) -> BrokerAdapter:
    from ordergate.brokers.config import BrokerConfigError, make_adapter, parse_broker_config

    sim = sim_config_for(spec)
    if sim is not None:
        from ordergate.brokers.sim import SimBroker

        try:
            return SimBroker(sim)
        except BrokerConfigError as exc:  # its state file (SimStateError), named in `exc`
            raise UserError(f"--broker {spec}: {exc}") from None
    raw = _read_yaml(spec)
    section = raw.get(BROKER_SECTION) if isinstance(raw, dict) else None
    if not isinstance(section, dict):
        raise UserError(f"--broker {spec}: expected a top-level '{BROKER_SECTION}:' section "
                        f"holding the broker settings, for example:\n{_BROKER_EXAMPLE}")
    try:
        config = parse_broker_config(section, source=BROKER_SECTION)
    except BrokerConfigError as exc:
        raise UserError(f"--broker {spec}: {exc}") from None
    limits = policy.limits_for("*", "*", "*")
    allowed = limits.allowed_order_types
    try:
        adapter: BrokerAdapter = make_adapter(
            config, **({"allowed_order_types": allowed} if allowed else {}))
    except (OSError, BrokerConfigError) as exc:
        raise UserError(f"--broker {spec}: {redact_url(str(exc))}") from None
    except ValueError as exc:  # the adapter's own check of a setting this config passed
        raise UserError(f"--broker {spec}: the {config.broker} adapter refused this "
                        f"configuration: {redact_url(str(exc))}") from None
    return adapter
