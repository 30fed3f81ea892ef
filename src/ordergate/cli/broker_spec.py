"""`--broker sim|FILE` for the commands that talk to a broker (`run`, `serve`, `gateway`):
the simulator, or the adapter a broker config file describes (paper or live; live needs its
explicit confirmation), checked at start-up against the order types the policy allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ordergate.brokers.base import BrokerAdapter
from ordergate.cli.errors import UserError


def broker_from_spec(spec: str, policy: Any) -> BrokerAdapter:
    from ordergate.brokers.config import BrokerConfigError, make_adapter, parse_broker_config

    if spec == "sim":
        from ordergate.brokers.sim import SimBroker, SimConfig

        return SimBroker(SimConfig())
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--broker {spec}: expected 'sim' or a broker config YAML file")
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        config = parse_broker_config(raw.get("broker", raw) if isinstance(raw, dict) else raw,
                                     source=str(path))
        limits = policy.limits_for("*", "*", "*")
        allowed = limits.allowed_order_types
        adapter: BrokerAdapter = make_adapter(
            config, **({"allowed_order_types": allowed} if allowed else {}))
        return adapter
    except (OSError, YAMLError, BrokerConfigError) as exc:
        raise UserError(f"--broker {spec}: {exc}") from None
