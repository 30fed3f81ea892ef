"""A compiled plan: the rows of the rule table that can break under one limits value, and the
screen that picks, per intent, the few of them worth running.

Most limits are fixed per (account, strategy, symbol), and a rule whose limit is unset
returns None for every intent. Compiling the table once per distinct `ResolvedLimits` into
the tuple of rows that apply (`Rule.applies`) leaves out the rules that cannot matter, and
the plan's screen (`gate.screen`) then asks the remaining rows' "could this break?" inline,
so a clean intent runs no rule function at all. A plan holds no state of the world, only the
limits' consequences, so one plan serves every intent under those limits.

`PlanCache` memoises plans by the identity of the limits object (a policy hands out one
object per key), then by value: many keys resolve to equal limits, and equal limits (field
by field) make every `applies` answer the same, so they share one plan and the table is
compiled once per distinct value. The cache keeps each limits object alive, so an id is never
reused while its entry exists; it is bounded, and clearing it only costs recompiling.
"""

from __future__ import annotations

from ordergate.gate.screen import BookMemo, LossMemo, MarketMemo, ScreenLimits, screen_limits
from ordergate.gate.table import RULES, Check, Rule
from ordergate.policy.limits import ResolvedLimits

_CACHE_LIMIT = 10_000


class Plan:
    """`rows`: (check, row) in table order. `screen`: the limits the screen reads, or None to
    run every row (the full table, or limits under which some row breaks every intent)."""

    __slots__ = ("rows", "screen")

    def __init__(self, rows: tuple[tuple[Check, Rule], ...], screen: ScreenLimits | None) -> None:
        self.rows = rows
        self.screen = screen


# every row, no screen: right for any limits, and what a one-off evaluation runs
FULL_PLAN = Plan(tuple((rule.check, rule) for rule in RULES if rule.check is not None), None)


def compile_plan(
    limits: ResolvedLimits, markets: MarketMemo | None = None, losses: LossMemo | None = None,
    books: BookMemo | None = None,
) -> Plan:
    """The rows of the table whose `applies` holds for `limits`, in table order, screened.
    `markets`, `losses`, `books`: the memos of market facts, of loss rows and of the figures
    of each account's symbols to share with other plans (new ones by default)."""
    rows = tuple(
        (check, rule) for check, rule in FULL_PLAN.rows
        if rule.applies is None or rule.applies(limits)
    )
    return Plan(rows, screen_limits(
        limits, {} if markets is None else markets, {} if losses is None else losses,
        {} if books is None else books,
    ))


class PlanCache:
    """Plans by limits identity (see the module docstring)."""

    __slots__ = ("_books", "_by_value", "_losses", "_markets", "_plans")

    def __init__(self) -> None:
        self._plans: dict[int, tuple[ResolvedLimits, Plan]] = {}
        self._by_value: dict[ResolvedLimits, Plan] = {}
        # the market facts its plans' screens share (`gate.screen.MarketMemo`)
        self._markets: MarketMemo = {}
        # and the loss rows (`gate.screen.LossMemo`)
        self._losses: LossMemo = {}
        # and the figures of each account's symbols (`gate.screen.BookMemo`)
        self._books: BookMemo = {}

    def plan(self, limits: ResolvedLimits) -> Plan:
        found = self._plans.get(id(limits))
        if found is not None:
            return found[1]
        plan = self._by_value.get(limits)
        if plan is None:
            plan = compile_plan(limits, self._markets, self._losses, self._books)
            if len(self._by_value) >= _CACHE_LIMIT:
                self._by_value.clear()
            self._by_value[limits] = plan
        if len(self._plans) >= _CACHE_LIMIT:
            self._plans.clear()
        self._plans[id(limits)] = (limits, plan)
        return plan
