"""Which broker to talk to, how, and whether real money is allowed.

`execution_mode` (paper | live) is its own setting, never folded into a strategy or profile
name. Live refuses to start unless `live_confirmed` is true. Credentials are never in the
config: it names the environment variables that hold them, and what is read from them is a
`Secret` that prints as "***" in repr, str, logs and tracebacks.

`make_adapter` builds the adapter and checks at start-up that every order type and time in
force the policy allows is one the venue really offers, so an unsupported type is refused
before trading starts, never emulated.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog

from ordergate.brokers.base import BrokerAdapter, BrokerCapabilities
from ordergate.journal import redact_url
from ordergate.model.intent import OrderType, TimeInForce

log = structlog.get_logger("ordergate.brokers")


class BrokerKind(enum.StrEnum):
    SIM = "sim"
    ALPACA = "alpaca"
    DERIBIT = "deribit"
    TRADIER = "tradier"


class ExecutionMode(enum.StrEnum):
    PAPER = "paper"
    LIVE = "live"


class BrokerConfigError(ValueError):
    """The broker configuration cannot be used; the message names the field and the fix."""


class LiveNotConfirmed(BrokerConfigError):
    """execution_mode is live but the operator has not confirmed it."""


class UnsupportedCapability(BrokerConfigError):
    """The policy allows an order type or time in force the venue does not offer."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Secret:
    """A credential. Prints as '***' everywhere; `reveal()` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not serialisable")


_PAPER_URLS = {
    BrokerKind.ALPACA: "https://paper-api.alpaca.markets",
    BrokerKind.DERIBIT: "https://test.deribit.com",
    BrokerKind.TRADIER: "https://sandbox.tradier.com",
}
_LIVE_URLS = {
    BrokerKind.ALPACA: "https://api.alpaca.markets",
    BrokerKind.DERIBIT: "https://www.deribit.com",
    BrokerKind.TRADIER: "https://api.tradier.com",
}

# Every host name that reaches a venue's real-money API.
_LIVE_HOSTS = {
    BrokerKind.ALPACA: ("api.alpaca.markets",),
    BrokerKind.DERIBIT: ("www.deribit.com", "deribit.com"),
    BrokerKind.TRADIER: ("api.tradier.com",),
}


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").rstrip(".").lower()


MAX_TIMEOUT_S = 300.0
# The venues' clients count whole milliseconds (ccxt turns 0.0004 s into 0 ms and every
# request then fails), so a shorter timeout is refused here, by name.
MIN_TIMEOUT_S = 0.001
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _is_env_var_name(text: str) -> bool:
    """Whether `text` reads as an environment variable NAME rather than a credential.

    Names are letters, digits and '_' (at most 64). Keys and tokens pasted in by mistake can
    fit that too, so two shapes names do not have are refused: mixed case with digits (tokens,
    secrets, client ids) and 16 or more characters with digits but no '_' (key ids such as
    Alpaca's PK...)."""
    if not _ENV_NAME.fullmatch(text):
        return False
    has_digit = any(char.isdigit() for char in text)
    mixed_case = any(char.islower() for char in text) and any(char.isupper() for char in text)
    if has_digit and mixed_case:
        return False
    return not (has_digit and "_" not in text and len(text) >= 16)


class BrokerConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One broker connection for one ordergate account.

    `api_key_env` / `api_secret_env` are environment variable NAMES (Tradier uses only
    `api_key_env`, for its access token). `broker_account` is the venue's own account number
    where the API needs it (Tradier). `currencies` are the Deribit currencies whose orders and
    positions this adapter reads. `post_only` makes every Deribit limit order post-only
    (rejected rather than taking liquidity). `client_rate_limit` keeps ccxt's own request
    pacing on. `sim_state_path` is where the simulator keeps its book between runs.
    """

    broker: BrokerKind
    execution_mode: ExecutionMode
    account: str
    live_confirmed: bool = False
    api_key_env: str = ""
    api_secret_env: str = ""
    broker_account: str = ""
    base_url: str | None = None
    timeout_s: float = 10.0
    currencies: tuple[str, ...] = ("BTC", "ETH")
    post_only: bool = False
    client_rate_limit: bool = True
    sim_state_path: str | None = None

    def __post_init__(self) -> None:
        if not self.account:
            raise BrokerConfigError("broker.account: required (the ordergate account it serves)")
        # NaN and infinity fail the range test.
        if not MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S:
            raise BrokerConfigError(
                f"broker.timeout_s: expected a number of seconds from {MIN_TIMEOUT_S:g} (1 ms)"
                f" to {MAX_TIMEOUT_S:g} (e.g. 10), got {self.timeout_s}")
        if not self.currencies:
            raise BrokerConfigError(
                "broker.currencies: expected at least one currency (e.g. [BTC, ETH]), got none")
        for index, currency in enumerate(self.currencies):
            if not isinstance(currency, str) or not currency.strip():
                raise BrokerConfigError(
                    f"broker.currencies[{index}]: expected a currency code such as BTC,"
                    f" got {currency!r}")
        if self.execution_mode is ExecutionMode.PAPER and self.base_url and (
                _host(self.base_url) in _LIVE_HOSTS.get(self.broker, ())):
            # Paper mode skips the live confirmation: it must not reach real money by URL.
            raise BrokerConfigError(
                f"broker.base_url: {_host(self.base_url)} is {self.broker}'s LIVE endpoint but"
                " execution_mode is paper; for real money set execution_mode: live and"
                " live_confirmed: true, else remove base_url (paper uses"
                f" {_PAPER_URLS[self.broker]})")
        for field in ("api_key_env", "api_secret_env"):
            name = getattr(self, field)
            if name and not _is_env_var_name(name):
                # Never repeat the value: it may be the credential itself.
                raise BrokerConfigError(
                    f"broker.{field}: expected the NAME of an environment variable (letters,"
                    " digits and '_', not starting with a digit, e.g. ALPACA_API_KEY_ID), not a"
                    " credential; put the credential in that variable and name it here")

    @property
    def resolved_base_url(self) -> str:
        """The override when given, else the venue's paper or live endpoint."""
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.broker is BrokerKind.SIM:
            return ""
        table = _LIVE_URLS if self.execution_mode is ExecutionMode.LIVE else _PAPER_URLS
        return table[self.broker]


def parse_broker_config(raw: Mapping[str, Any], source: str = "broker") -> BrokerConfig:
    """A BrokerConfig from a mapping (e.g. a YAML section); errors name `source` and the field."""
    try:
        return msgspec.convert(raw, BrokerConfig, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if " - at `$." in message:
            what, where = message.rsplit(" - at `$.", 1)
            raise BrokerConfigError(f"{source}.{where.rstrip('`')}: {what}") from None
        unknown = re.fullmatch(r"Object contains unknown field `(.*)`", message)
        if unknown:
            raise BrokerConfigError(
                f"{source}.{unknown.group(1)}: unknown key (broker settings:"
                f" {', '.join(BrokerConfig.__struct_fields__)})") from None
        if message.startswith("broker."):  # raised by BrokerConfig.__post_init__
            raise BrokerConfigError(f"{source}.{message.removeprefix('broker.')}") from None
        raise BrokerConfigError(f"{source}: {message}") from None


def read_secret(env_name: str, field: str, environ: Mapping[str, str] | None = None) -> Secret:
    """The credential held by environment variable `env_name`; the error names the variable."""
    env = os.environ if environ is None else environ
    if not env_name:
        raise BrokerConfigError(f"broker.{field}: required (name of the environment variable"
                                " holding the credential)")
    value = env.get(env_name, "")
    if not value:
        raise BrokerConfigError(
            f"broker.{field}: environment variable {env_name} is not set or empty")
    return Secret(value)


def check_capabilities(
    policy_allowed_types: Iterable[OrderType],
    adapter: BrokerAdapter,
    policy_allowed_tifs: Iterable[TimeInForce] = (),
    *,
    needs_reduce_only: bool = False,
) -> list[str]:
    """Every order type / time in force the policy allows that the adapter cannot send."""
    caps: BrokerCapabilities = adapter.capabilities
    problems: list[str] = []
    for order_type in sorted(set(policy_allowed_types)):
        if order_type not in caps.order_types:
            problems.append(
                f"policy allows order type '{order_type}' but broker '{adapter.name}' does not"
                f" support it (supported: {', '.join(sorted(caps.order_types))});"
                " restrict allowed_order_types in the policy")
    for tif in sorted(set(policy_allowed_tifs)):
        if tif not in caps.time_in_force:
            problems.append(
                f"policy allows time in force '{tif}' but broker '{adapter.name}' does not"
                f" support it (supported: {', '.join(sorted(caps.time_in_force))})")
    if needs_reduce_only and not caps.reduce_only:
        problems.append(f"policy needs venue-side reduce_only but broker '{adapter.name}'"
                        " does not offer it")
    return problems


def make_adapter(
    config: BrokerConfig,
    *,
    allowed_order_types: Iterable[OrderType] = tuple(OrderType),
    allowed_tifs: Iterable[TimeInForce] = (),
    environ: Mapping[str, str] | None = None,
) -> BrokerAdapter:
    """Build the adapter `config` describes, or refuse with BrokerConfigError.

    `allowed_order_types` is what the policy allows (all types when the policy sets no
    restriction); `allowed_tifs` the times in force the strategies will use.
    """
    if config.execution_mode is ExecutionMode.LIVE:
        if config.broker is BrokerKind.SIM:
            raise BrokerConfigError(
                "broker.execution_mode: 'live' needs a real broker; 'sim' runs in paper mode only")
        if not config.live_confirmed:
            raise LiveNotConfirmed(
                f"broker.live_confirmed: execution_mode is 'live' for broker '{config.broker}'"
                " (real money) but live_confirmed is not true; set live_confirmed: true to"
                " confirm, or use execution_mode: paper")
    adapter = _build(config, environ)
    problems = check_capabilities(allowed_order_types, adapter, allowed_tifs)
    if problems:
        raise UnsupportedCapability(problems)
    log.info("broker_adapter_ready", broker=str(config.broker),
             execution_mode=str(config.execution_mode),
             base_url=redact_url(config.resolved_base_url), account=config.account)
    return adapter


def _build(config: BrokerConfig, environ: Mapping[str, str] | None) -> BrokerAdapter:
    paper = config.execution_mode is ExecutionMode.PAPER
    if config.broker is BrokerKind.SIM:
        from ordergate.brokers.sim import SimBroker, SimConfig

        return SimBroker(SimConfig(state_path=config.sim_state_path))
    if config.broker is BrokerKind.ALPACA:
        from ordergate.brokers.alpaca import AlpacaAdapter

        return AlpacaAdapter(
            api_key=read_secret(config.api_key_env, "api_key_env", environ),
            secret_key=read_secret(config.api_secret_env, "api_secret_env", environ),
            account=config.account, paper=paper, base_url=config.resolved_base_url,
            timeout_s=config.timeout_s)
    if config.broker is BrokerKind.DERIBIT:
        from ordergate.brokers.ccxt_venue import CcxtVenue

        return CcxtVenue(
            api_key=read_secret(config.api_key_env, "api_key_env", environ),
            secret=read_secret(config.api_secret_env, "api_secret_env", environ),
            account=config.account, base_url=config.resolved_base_url,
            timeout_s=config.timeout_s, currencies=config.currencies,
            post_only=config.post_only, client_rate_limit=config.client_rate_limit,
            paper=paper)
    from ordergate.brokers.tradier import TradierAdapter

    if not config.broker_account:
        raise BrokerConfigError("broker.broker_account: required for tradier (the Tradier"
                                " account number orders are placed in)")
    return TradierAdapter(
        token=read_secret(config.api_key_env, "api_key_env", environ),
        broker_account=config.broker_account, account=config.account,
        base_url=config.resolved_base_url, timeout_s=config.timeout_s, paper=paper)
