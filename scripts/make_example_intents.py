"""Regenerate examples/intents.jsonl, state.json and market.json (run from the project root
with the project's Python: `python scripts/make_example_intents.py`), then refresh
tests/golden/eval_decisions.jsonl with `ordergate eval ... --out`. Each intent names, in its
tags, the rule it demonstrates; together they raise every reason code of the gate's rule
table (tests/cli/test_eval.py holds them to it).

Besides intents and market snapshots the file carries the other inputs a gateway journals:
operator commands, broker fills and cancels, the firm-wide store's heartbeat (`firm`) and a
policy version to activate (`policy`)."""

import json
from datetime import UTC, datetime, timedelta

from ordergate.policy.loader import Policy, load_policy

T0 = datetime(2026, 3, 2, 15, 0, 0, tzinfo=UTC)  # Monday 10:00 New York: XNYS open


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


PRICES = {
    "AAPL": ("189.99", "190.01", "190.00", "5000000"),
    "MSFT": ("409.99", "410.01", "410.00", "3000000"),
    "TSLA": ("199.98", "200.02", "200.00", "2000000"),
    "GME": ("20.00", "20.02", "20.01", "1000000"),
    "BTC-USD": ("60000.00", "60001.00", "60000.50", "100"),
    "AMZN": ("179.99", "180.01", "180.00", "4000000"),
    "AMD": ("149.99", "150.01", "150.00", "6000000"),
    "ETH-USD": ("3000.00", "3000.10", "3000.05", "5000"),
}


def snap(sym, t, bid=None, ask=None, last=None, vol=None):
    bid0, ask0, last0, vol0 = PRICES[sym]
    return {
        "type": "market",
        "symbol": sym,
        "ts": ts(t),
        "bid": bid or bid0,
        "ask": ask or ask0,
        "last": last or last0,
        "volume": vol or vol0,
    }


market = [snap(s, T0) for s in PRICES]
state = {
    "accounts": [
        {"account": "ACC1", "cash": "10000000"},
        {"account": "ACC2", "cash": "200000"},
        {"account": "ACC3", "cash": "500000"},  # equity 800,000 with its AMD at 150
    ],
    "positions": [
        {"account": "ACC1", "symbol": "MSFT", "qty": "1000", "avg_price": "400"},
        {"account": "ACC2", "symbol": "TSLA", "qty": "500", "avg_price": "200"},
        {"account": "ACC3", "symbol": "AMD", "qty": "2000", "avg_price": "150"},
    ],
}
# ACC4 trades below but is not in the state: it has no equity marks (SYS-005)

lines = []
clock = [T0]
n = [0]


def step(ms=100):
    clock[0] += timedelta(milliseconds=ms)
    return clock[0]


def refresh(*syms, **over):
    t = step(10)
    for s in syms or PRICES:
        lines.append(snap(s, t, **over))


def intent(
    note,
    account="ACC1",
    strategy="trend",
    symbol="MSFT",
    side="buy",
    qty="10",
    order_type="limit",
    limit_price="410.00",
    ms=100,
    t=None,
    **extra,
):
    n[0] += 1
    i = {
        "intent_id": f"ex-{n[0]:03d}",
        "ts": ts(t or step(ms)),
        "account": account,
        "strategy": strategy,
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "order_type": order_type,
    }
    if limit_price is not None:
        i["limit_price"] = limit_price
    i.update(extra)
    i["tags"] = {"example": note}
    lines.append(i)
    return i


def command(action, reason, ms=100, **extra):
    lines.append({"type": "command", "ts": ts(step(ms)), "action": action,
                  "operator": "risk-officer", "reason": reason, **extra})


def firm(gross, kill=False):
    """What the firm-wide store (shared by every gateway) reported at a heartbeat: the other
    gateways' gross exposure and the firm kill switch."""
    lines.append({"type": "firm", "ts": ts(step(10)), "kill": kill, "gross_exposure": gross})


# --- order sanity
intent("plain allow")  # ALLOW
intent(
    "ORD-001 stop orders are not allowed", order_type="stop", limit_price=None, stop_price="415.00"
)
intent("ORD-003 limit order without a price", limit_price=None)
intent("ORD-004 price off the 0.01 tick", limit_price="410.005")
intent("ORD-005 quantity off the lot size", qty="10.5")
intent("ORD-006 over max order qty (5000)", qty="6000")
intent("ORD-007 over max order value (trend 500000)", qty="1300")
intent("ORD-008 limit 7% away from the reference (collar 5%)", limit_price="440.00")
intent("ORD-009 restricted symbol", symbol="GME", limit_price="20.01")
intent(
    "SYS-001 no market data (and SYS-004: no instrument entry)", symbol="NVDA", limit_price="100.00"
)
intent("ORD-010 sell would cross our own resting buy at 410.00", side="sell", limit_price="409.99")
intent("ORD-011 reduce_only buy would grow the long", reduce_only=True, qty="7")
refresh()
# --- duplicates and retries
cid = intent(
    "ALLOW with the strategy's own client order id", qty="11", client_order_id="trend-cid-1"
)
intent("DUP-001 the same client order id again", qty="12", client_order_id="trend-cid-1")
intent("DUP-002 same account/strategy/symbol/side/qty/price within 5s", qty="10")
retry = dict(lines[0])
retry["ts"] = ts(step())
retry["tags"] = {"example": "retry of ex-001: same decision, no second order"}
lines.append(retry)
refresh()
# --- exposure: position value cap 1,000,000 on MSFT (1000 held @ 410 plus working buys)
intent("ALLOW: 1200 more MSFT fits the position value cap", qty="1200")
intent("MODIFY: EXP-002 position value cap, shrunk to fit", qty="1200", limit_price="410.01")
refresh()
# --- BTC-USD: lot 0.001, max order 2.5, position cap 10, participation 2.5 % of volume 100
for k, q in enumerate(["2.5", "2.5", "2.5", "2"]):
    intent(f"ALLOW BTC buy {q}", symbol="BTC-USD", qty=q, limit_price=f"{60000 + k}.00")
intent(
    "MODIFY: EXP-001 position qty cap 10, 9.5 working: shrunk to 0.5",
    symbol="BTC-USD",
    qty="1",
    limit_price="60010.00",
)
intent(
    "ORD-001 market orders are not allowed on BTC-USD",
    symbol="BTC-USD",
    qty="0.1",
    order_type="market",
    limit_price=None,
)
refresh("BTC-USD", vol="40")
intent(
    "LIQ-001 2 BTC is 5 % of volume 40 (max 2.5 %)",
    account="ACC2",
    symbol="BTC-USD",
    qty="2",
    limit_price="60000.00",
)
refresh()
# --- ACC2 (net cap 500,000; gross cap 1,000,000): holds 500 TSLA = 100,000
intent(
    "ALLOW ACC2 TSLA 1000",
    account="ACC2",
    symbol="TSLA",
    qty="1000",
    limit_price="200.00",
    client_order_id="acc2-tsla-1",
)
intent(
    "ALLOW ACC2 TSLA 1000: net exactly at the 500,000 cap",
    account="ACC2",
    symbol="TSLA",
    qty="1000",
    limit_price="200.01",
    client_order_id="acc2-tsla-2",
)
intent(
    "MODIFY->DENY: EXP-004 net cap full",
    account="ACC2",
    symbol="TSLA",
    qty="100",
    limit_price="200.02",
)
intent(
    "ALLOW ACC2 short 1000 AAPL",
    account="ACC2",
    symbol="AAPL",
    side="sell",
    qty="1000",
    limit_price="190.00",
)
intent(
    "MODIFY: EXP-003 gross cap, short MSFT shrunk to fit",
    account="ACC2",
    symbol="MSFT",
    side="sell",
    qty="1000",
    limit_price="410.00",
)
refresh()
# --- throttles: burst strategy may send 10 orders a second
for k in range(11):
    intent(
        "burst order" if k < 10 else "THR-003 11th burst order inside 1s",
        strategy="burst",
        symbol="AAPL",
        qty=str(k + 1),
        limit_price="190.00",
        ms=20,
    )
refresh()
# --- clock skew: an intent stamped 1s before the gateway's event time
intent("CLK-001 timestamp 1s behind the gateway clock", qty="13", t=clock[0] - timedelta(seconds=1))
# --- stale data: MSFT not updated for 2.5s while others are
for _ in range(3):
    step(900)
    refresh("AAPL", "TSLA", "GME", "BTC-USD")
intent("SYS-002 MSFT data older than 2s", qty="14")
refresh()
# --- operator kill of ACC2, then unkill
t = step()
lines.append(
    {
        "type": "command",
        "ts": ts(t),
        "action": "kill",
        "scope": "account",
        "key": "ACC2",
        "operator": "risk-officer",
        "reason": "ACC2 limits under review",
    }
)
intent(
    "KIL-002 ACC2 is killed by an operator",
    account="ACC2",
    symbol="TSLA",
    qty="5",
    limit_price="200.00",
)
t = step()
lines.append(
    {
        "type": "command",
        "ts": ts(t),
        "action": "unkill",
        "scope": "account",
        "key": "ACC2",
        "operator": "risk-officer",
        "reason": "review done",
    }
)
refresh()
# --- bad data moves the gateway to REDUCE_ONLY; risk-reducing orders still pass
refresh("TSLA", bid="0", ask="200.02", last="200.00")
intent(
    "MOD-002 REDUCE_ONLY after invalid TSLA data: a new buy is denied",
    symbol="AAPL",
    qty="15",
    limit_price="190.00",
)
intent(
    "ALLOW: selling part of the MSFT long reduces risk",
    side="sell",
    qty="100",
    limit_price="410.02",
)
refresh()
t = step()
lines.append(
    {
        "type": "command",
        "ts": ts(t),
        "action": "resume",
        "operator": "risk-officer",
        "reason": "TSLA feed fixed",
    }
)
intent("ALLOW again after the operator resumed", symbol="AAPL", qty="16", limit_price="190.00")
# the broker cancels ACC2's two working TSLA buys: their reservations are released
for cid in ("acc2-tsla-1", "acc2-tsla-2"):
    lines.append(
        {
            "type": "canceled",
            "ts": ts(step(10)),
            "client_order_id": cid,
            "reason": "canceled by the strategy",
        }
    )
# --- loss: TSLA falls; ACC2 (max daily loss 5000) loses 500 x 10 = 5000 on its TSLA
t = step(10)
lines.append(snap("TSLA", t, bid="189.99", ask="190.01", last="190.00"))
intent(
    "LOS-001 ACC2 daily loss reached 5000",
    account="ACC2",
    symbol="MSFT",
    qty="1",
    limit_price="410.00",
)
intent(
    "ALLOW: selling TSLA reduces ACC2's risk even at the loss limit",
    account="ACC2",
    symbol="TSLA",
    side="sell",
    qty="100",
    limit_price="190.00",
)
# --- market hours: AAPL outside the XNYS session (21:30Z)
late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
clock[0] = late
refresh()
intent("MKT-001 AAPL after the XNYS close", symbol="AAPL", qty="5", limit_price="190.00")
intent(
    "ALLOW BTC-USD trades 24/7", symbol="BTC-USD", side="sell", qty="0.001", limit_price="60011.00"
)

# ======== Tuesday: the day rolled at Monday's XNYS close, so daily losses count from 0 again
clock[0] = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)  # 09:30 New York: XNYS opens
refresh()
firm("5000000")  # the other gateways hold 5,000,000 gross; ACC3's firm cap needs this figure
# --- fail closed and canary
intent("MKT-002 AMZN is set up but not on the canary list", symbol="AMZN", limit_price="180.00")
intent("SYS-005 ACC4 has no account state: its loss limits cannot be checked", account="ACC4",
       qty="21")
intent(
    "SYS-008 100 trillion ETH is 10^32 wei lots: beyond exact 28-digit decimal arithmetic",
    symbol="ETH-USD",
    qty="100000000000000",
    limit_price="3000.00",
)
# --- throttles, one scope at a time, each burst a second after the last (its window is empty)
step(1000)
refresh()
for k in range(6):  # TSLA: at most 5 orders a second
    intent(
        "TSLA order" if k < 5 else "THR-004 6th TSLA order inside 1s",
        symbol="TSLA", qty=str(k + 1), limit_price="200.00", ms=20,
    )
step(1000)
refresh()
for k in range(6):  # ACC3: at most 5 orders a second
    intent(
        "ACC3 order" if k < 5 else "THR-002 6th ACC3 order inside 1s",
        account="ACC3", qty=str(k + 1), ms=20,
    )
step(1000)
refresh()
for k in range(4):  # sweep waits once the gateway has accepted 3 orders within a second
    intent(
        "sweep order" if k < 3 else "THR-001 the gateway accepted 3 orders within 1s",
        strategy="sweep", symbol="AAPL", qty=str(k + 31), limit_price="190.00", ms=20,
    )
# --- repeated executions: the broker fills three scalper orders within a minute
step(1000)
refresh()
for k in range(3):
    order = intent(f"scalper order {k + 1}", strategy="scalper", symbol="AAPL", qty=str(k + 41),
                   limit_price="190.00", client_order_id=f"scalp-{k + 1}")
    lines.append({"type": "fill", "ts": ts(step(10)), "client_order_id": order["client_order_id"],
                  "fill_id": f"scalp-fill-{k + 1}", "qty": order["qty"], "price": "190.00"})
intent("THR-006 scalper was disabled by its third fill within 1m", strategy="scalper",
       symbol="AAPL", qty="44", limit_price="190.00")
# --- a crossed AMD quote (bid above ask) moves the gateway to REDUCE_ONLY
refresh()
refresh("AMD", bid="150.05", ask="150.00")
intent(
    "SYS-003 a market sell would reduce ACC3's AMD long, but its fill depends on a crossed quote",
    account="ACC3", symbol="AMD", side="sell", qty="100", order_type="market", limit_price=None,
)
intent("ALLOW the same sell at a limit price: it cannot add risk (SYS-003 recorded)",
       account="ACC3", symbol="AMD", side="sell", qty="100", limit_price="150.00")
refresh()
command("resume", "AMD feed fixed")
# --- the firm-wide store: gross near the firm cap, then the firm kill switch
# the other gateways now hold 7,415,000: with this gateway's own 2,564,775 gross the firm is
# 20,225 short of ACC3's 10,000,000 cap
firm("7415000")
intent("MODIFY: EXP-005 the firm-wide gross cap, ACC3's buy shrunk to fit", account="ACC3",
       qty="100")
firm("7415000", kill=True)
intent("KIL-003 the firm kill switch (engaged from another gateway) stops every order",
       symbol="AAPL", qty="22", limit_price="190.00")
firm("5000000")
# --- the policy's own kill switch: the desk activates a copy of this policy with it on
policy = load_policy("examples/policy.yaml")
killed = Policy.from_document({**policy.document, "kill_switch": True})
lines.append({"type": "policy", "ts": ts(step(10)), "policy_hash": killed.hash,
              "document": killed.document})
command("activate_policy", "desk stand-down", policy_hash=killed.hash)
intent("KIL-001 the active policy's kill_switch is on", symbol="AAPL", qty="23",
       limit_price="190.00")
command("activate_policy", "stand-down over", policy_hash=policy.hash)
# --- loss: AMD falls; ACC3 (equity 800,000 at the day start) holds 2000
step(1000)
refresh()
lines.append(snap("AMD", step(10), bid="138.99", ask="139.01", last="139.00"))
intent("LOS-002 ACC3 lost 22,000 today: 2.75 % (max 2.5 %)", account="ACC3", symbol="AMD",
       qty="50", limit_price="139.00")
lines.append(snap("AMD", step(10), bid="114.99", ask="115.01", last="115.00"))
intent(
    "MOD-001 ACC3 is 8.75 % below its high-water mark (max 8 %): the drawdown halted trading",
    account="ACC3", symbol="AMD", qty="51", limit_price="115.00",
)
intent("MOD-001 halted for every account until two operators resume", symbol="AAPL", qty="24",
       limit_price="190.00")

with open("examples/intents.jsonl", "w") as f:
    for line in lines:
        f.write(json.dumps(line, separators=(",", ":")) + "\n")
with open("examples/state.json", "w") as f:
    json.dump(state, f, indent=2)
    f.write("\n")
with open("examples/market.json", "w") as f:
    json.dump(market, f, indent=2)
    f.write("\n")
print(len(lines), "lines")
