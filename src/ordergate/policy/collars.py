"""The two price collars agree: a market order is never collared more loosely than a limit order.

`price_collar_pct` bounds a limit price; `market_collar_pct` bounds the price a market order is
expected to fill at (the far side of the quote). A market order names no price at all, so its
collar may only be the tighter of the two:

* resolution: where `price_collar_pct` applies and `market_collar_pct` does not, market orders
  are collared by `price_collar_pct` (`fill_market_collar`), so the rule, the screen and explain
  all read one value from `ResolvedLimits`;
* load: a `market_collar_pct` greater than the `price_collar_pct` that applies with it, in one
  section or after overrides are resolved for any (account, strategy, symbol), is an error
  naming the field that makes it so (`check_collars`).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from msgspec import UNSET

from ordergate.policy.errors import Path, format_path
from ordergate.policy.spec import Limits, PolicySpec
from ordergate.policy.yamlsource import SourceMap

PRICE = "price_collar_pct"
MARKET = "market_collar_pct"

# (value, the section it comes from) of one collar; None: no section sets it
_Source = tuple[Decimal, Path] | None
_RANK = {"defaults": 0, "accounts": 1, "strategies": 2, "symbols": 3}


def fill_market_collar(fields: dict[str, Any]) -> None:
    """Resolved fields of one key: market orders take the limit-order collar when they have
    none of their own."""
    if fields.get(MARKET) is None and fields.get(PRICE) is not None:
        fields[MARKET] = fields[PRICE]


def _collars(limits: Limits, section: Path) -> tuple[_Source, _Source]:
    price, market = limits.price_collar_pct, limits.market_collar_pct
    return (None if price is UNSET else (price, section),
            None if market is UNSET else (market, section))


def _choices(sections: dict[str, Limits], level: str) -> list[tuple[_Source, _Source]]:
    """The distinct collar settings a level can contribute, no override first (a key whose
    name has no section there). Sections that set neither collar add nothing new."""
    found: list[tuple[_Source, _Source]] = [(None, None)]
    seen: set[tuple[object, object]] = {(None, None)}
    for name, limits in sections.items():
        price, market = _collars(limits, (level, name))
        values = (price and price[0], market and market[0])
        if values not in seen:
            seen.add(values)
            found.append((price, market))
    return found


def check_collars(spec: PolicySpec, smap: SourceMap) -> None:
    """Refuse a policy in which some key's market collar is looser than its limit collar."""
    levels = [("accounts", spec.accounts), ("strategies", spec.strategies),
              ("symbols", spec.symbols)]
    # one section setting both wrongly is named on its own, before any combination
    every: list[tuple[Path, Limits]] = [(("defaults",), spec.defaults)]
    every += [((level, name), limits) for level, sections in levels
              for name, limits in sections.items()]
    for section, limits in every:
        price, market = _collars(limits, section)
        if price is not None and market is not None and market[0] > price[0]:
            raise smap.error((*section, MARKET), f"{market[0]} % is looser than this section's "
                             f"{PRICE} {price[0]} %: market orders may only be collared as "
                             f"tightly or more; set it to at most {price[0]}, or remove it to "
                             f"collar market orders by {PRICE}")
    base = _collars(spec.defaults, ("defaults",))
    for chosen in itertools.product(*(_choices(sections, level) for level, sections in levels)):
        price, market = base
        for level_price, level_market in chosen:
            price = level_price or price
            market = level_market or market
        if price is None or market is None or market[0] <= price[0]:
            continue
        price_at, market_at = price[1], market[1]
        # name the more specific of the two: that is where the combination is made
        if _RANK[str(market_at[0])] >= _RANK[str(price_at[0])]:
            raise smap.error((*market_at, MARKET), f"{market[0]} % is looser than the "
                             f"{PRICE} {price[0]} % from {format_path((*price_at, PRICE))} "
                             "that applies with it: market orders may only be collared as "
                             f"tightly or more; set it to at most {price[0]}")
        raise smap.error((*price_at, PRICE), f"{price[0]} % leaves market orders with the "
                         f"looser {MARKET} {market[0]} % from "
                         f"{format_path((*market_at, MARKET))}: market orders may only be "
                         f"collared as tightly or more; set {format_path((*price_at, MARKET))} "
                         f"to at most {price[0]} as well")
