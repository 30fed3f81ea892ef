"""Sliding windows on event time: rate counts and the duplicate-order window.

Times are integer microseconds since the epoch (`micros`), so counting is exact and cheap.
A series keeps its times in ascending order in a compact `array` (the engine's `now` never
goes backwards, so a record is nearly always an append; a fill is recorded at its own event
time, which may be older, and is then inserted in place); counting is a bisect, pruning
advances a head offset and compacts the array only when the dead prefix is at least half of
it, so both are O(log n) amortized.

Retention: a series must keep every entry that any configured window can still see. Each
kind remembers the longest window it was asked about or recorded with; entries older than
that are dropped. A policy that later lengthens a window starts with the history the old
retention kept (at least the old window), never more.
"""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_right, insort
from collections import deque
from datetime import UTC, datetime, timedelta

import msgspec

from ordergate.gate.view import IntentQuery

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_COMPACT_MIN = 256
_RETAINED_LIMIT = 10_000


def micros(ts: datetime) -> int:
    """Microseconds since the epoch of a UTC timestamp."""
    return (ts - EPOCH) // _MICRO


def span_micros(window: timedelta) -> int:
    return window // _MICRO


class WindowKind(enum.StrEnum):
    """What a series counts and which key it is kept under."""

    GLOBAL = "global"  # accepted orders, key ""
    ACCOUNT = "account"  # accepted orders, key account
    STRATEGY = "strategy"  # accepted orders, key strategy
    SYMBOL = "symbol"  # accepted orders, key symbol
    CANCEL = "cancel"  # accepted cancel requests, key account
    FILL = "fill"  # executions, key "account|strategy"


_GLOBAL = WindowKind.GLOBAL
_ACCOUNT = WindowKind.ACCOUNT
_STRATEGY = WindowKind.STRATEGY
_SYMBOL = WindowKind.SYMBOL


class TimeSeries:
    """Ascending event times; count those in (now - window, now].

    `count_window` remembers where its last count started (`_last`: the window's span, the
    window's start, and the index of the first time after that start). Asked again about
    the same window at a later `now`, it steps over the few times that left the window
    instead of bisecting the series: the gate asks the same windows for every intent, and a
    bisect over a busy series was most of a count. That index is only ever a lower bound of
    the answer's (times are appended in ascending order and the start only moves forward),
    so stepping from it finds the index a bisect would; 0 is always such a bound. `_last` is
    one tuple, replaced whole, so a count on another thread (the status page) never sees
    half of an update."""

    __slots__ = ("_head", "_last", "_times")

    def __init__(self, times: list[int] | None = None) -> None:
        self._times = array("q", times or ())
        self._head = 0
        self._last: tuple[int, int, int] = (0, 0, 0)  # span, start, first index after start

    def __len__(self) -> int:
        return len(self._times) - self._head

    def record(self, at: int) -> None:
        """Add `at`, keeping the times ascending: appended when it is the newest (the common
        case), else inserted in place (a fill recorded at its own, earlier, event time). An
        insert lands at or after the head, and at or after the last count's index unless it
        is inside that window's dead part, where the index stays a lower bound."""
        times = self._times
        if times and at < times[-1]:
            insort(times, at, self._head)
        else:
            times.append(at)

    def count_after(self, start_exclusive: int) -> int:
        times = self._times
        return len(times) - bisect_right(times, start_exclusive, self._head)

    def count_window(self, at: int, span: int) -> int:
        """Times in (at - span, at], as `count_after(at - span)`."""
        times = self._times
        start = at - span
        last_span, last_start, index = self._last
        if span == last_span and start >= last_start:
            head = self._head
            if index < head:
                index = head
            end = len(times)
            while index < end and times[index] <= start:
                index += 1
        else:
            index = bisect_right(times, start, self._head)
        self._last = (span, start, index)
        return len(times) - index

    def prune(self, keep_after: int) -> None:
        """Drop entries at or before `keep_after`."""
        times = self._times
        head = bisect_right(times, keep_after, self._head)
        if head >= _COMPACT_MIN and head * 2 >= len(times):
            del times[:head]
            # the last count's index moves with its time (the times before it are gone)
            span, start, index = self._last
            self._last = (span, start, index - head if index > head else 0)
            head = 0
        self._head = head

    def export(self) -> list[int]:
        return self._times[self._head:].tolist()


class SeriesImage(msgspec.Struct, frozen=True, array_like=True):
    kind: WindowKind
    key: str
    times: list[int]


class RetentionImage(msgspec.Struct, frozen=True, array_like=True):
    kind: WindowKind
    span: int


class RateWindowsImage(msgspec.Struct, frozen=True, kw_only=True):
    retention: list[RetentionImage]
    series: list[SeriesImage]


class _MicrosOf:
    """`micros(now)` for the last `now` asked about: the engine asks several times per event
    with the same datetime object, and the conversion is the costly part of a lookup.
    `last` is one (datetime, micros) tuple, replaced whole, so a reader on another thread
    (the status page) never pairs one time with another's microseconds."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: tuple[datetime | None, int] = (None, 0)

    def __call__(self, ts: datetime) -> int:
        last_ts, at = self.last
        if ts is not last_ts:
            at = micros(ts)
            self.last = (ts, at)
        return at


class RateWindows:
    """Every rate series of the engine, keyed by (kind, key)."""

    __slots__ = ("_micros", "_retained", "_retention", "_series")

    def __init__(self) -> None:
        self._series: dict[tuple[WindowKind, str], TimeSeries] = {}
        self._retention: dict[WindowKind, int] = {}
        self._micros = _MicrosOf()
        # the gate queries whose windows retention already covers, by identity (each held,
        # so an id is not reused while it is listed)
        self._retained: dict[int, IntentQuery] = {}

    def retain(self, kind: WindowKind, window: timedelta | None) -> None:
        """Keep at least `window` of history for every series of `kind` from now on."""
        if window is None:
            return
        span = span_micros(window)
        if span > self._retention.get(kind, 0):
            self._retention[kind] = span

    def record(
        self, kind: WindowKind, key: str, now: datetime, window: timedelta | None = None
    ) -> None:
        """Add one event at `now`; `window` (the configured one, if any) extends retention."""
        retention = self._retention
        keep = retention.get(kind, 0)
        if window is not None:
            span = window // _MICRO
            if span > keep:
                retention[kind] = keep = span
        at = self._micros(now)
        series = self._series.get((kind, key))
        if series is None:
            series = self._series[(kind, key)] = TimeSeries()
        series.record(at)
        series.prune(at - keep)

    def count(self, kind: WindowKind, key: str, now: datetime, window: timedelta) -> int:
        """Events in (now - window, now]."""
        span = window // _MICRO
        retention = self._retention
        if span > retention.get(kind, 0):
            retention[kind] = span
        series = self._series.get((kind, key))
        if series is None:
            return 0
        last_now, at = self._micros.last
        if now is not last_now:
            at = self._micros(now)
        return series.count_window(at, span)

    def drop(self, kind: WindowKind, key: str) -> None:
        """Forget the series of `kind` kept under `key` (counts start from zero again); the
        retention of `kind` stays."""
        self._series.pop((kind, key), None)

    def keys(self, kind: WindowKind) -> list[str]:
        """The keys with a series of `kind` (for the status page: O(series), never on the hot
        path)."""
        return [key for series_kind, key in self._series if series_kind is kind]

    def order_counts(
        self, account: str, strategy: str, symbol: str, now: datetime, query: IntentQuery
    ) -> tuple[int, int, int, int]:
        """`count` of the global, account, strategy and symbol series for one intent, with the
        windows of a gate plan's query (a window it leaves unset counts 0). The gate asks all
        four for every intent: one call that converts `now` once and extends retention once
        per query costs a fraction of four `count` calls."""
        if id(query) not in self._retained:
            self._retain_query(query)
        last_now, at = self._micros.last
        if now is not last_now:
            at = self._micros(now)
        span_global, span_account, span_strategy, span_symbol = query[-4:]
        series = self._series
        count_global = count_account = count_strategy = count_symbol = 0
        if span_global and (found := series.get((_GLOBAL, ""))) is not None:
            count_global = found.count_window(at, span_global)
        if span_account and (found := series.get((_ACCOUNT, account))) is not None:
            count_account = found.count_window(at, span_account)
        if span_strategy and (found := series.get((_STRATEGY, strategy))) is not None:
            count_strategy = found.count_window(at, span_strategy)
        if span_symbol and (found := series.get((_SYMBOL, symbol))) is not None:
            count_symbol = found.count_window(at, span_symbol)
        return count_global, count_account, count_strategy, count_symbol

    def _retain_query(self, query: IntentQuery) -> None:
        """Extend retention to a query's windows, as `count` does for its window, and remember
        the query: retention never shrinks, so asking again cannot extend it further."""
        for kind, span in zip((_GLOBAL, _ACCOUNT, _STRATEGY, _SYMBOL), query[-4:], strict=True):
            if span > self._retention.get(kind, 0):
                self._retention[kind] = span
        if len(self._retained) >= _RETAINED_LIMIT:
            self._retained.clear()
        self._retained[id(query)] = query

    def prune(self, now: datetime) -> None:
        """Expire every series up to `now`; drop empty ones. O(number of keys)."""
        at = micros(now)
        empty: list[tuple[WindowKind, str]] = []
        for (kind, key), series in self._series.items():
            series.prune(at - self._retention.get(kind, 0))
            if not series:
                empty.append((kind, key))
        for item in empty:
            del self._series[item]

    def image(self) -> RateWindowsImage:
        return RateWindowsImage(
            retention=[RetentionImage(kind, span) for kind, span in self._retention.items()],
            series=[
                SeriesImage(kind, key, series.export())
                for (kind, key), series in self._series.items()
                if series
            ],
        )

    @classmethod
    def from_image(cls, image: RateWindowsImage) -> RateWindows:
        windows = cls()
        for item in image.retention:
            windows._retention[item.kind] = item.span
        for entry in image.series:
            windows._series[(entry.kind, entry.key)] = TimeSeries(entry.times)
        return windows


class FingerprintImage(msgspec.Struct, frozen=True, array_like=True):
    at: int
    fingerprint: str


class DuplicateWindowImage(msgspec.Struct, frozen=True, kw_only=True):
    retention: int
    entries: list[FingerprintImage]


class DuplicateWindow:
    """Fingerprints of accepted intents with the time they were last accepted."""

    __slots__ = ("_last", "_micros", "_order", "_retention")

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()
        self._retention = 0
        self._micros = _MicrosOf()

    def __len__(self) -> int:
        return len(self._last)

    def seen(self, fingerprint: str, now: datetime, window: timedelta) -> bool:
        return self.seen_within(fingerprint, now, window // _MICRO)

    def seen_within(self, fingerprint: str, now: datetime, span: int) -> bool:
        """`seen` with the window in whole microseconds (the gate's queries carry it so)."""
        if span > self._retention:
            self._retention = span
        at = self._last.get(fingerprint)
        if at is None:
            return False
        last_now, now_at = self._micros.last
        if now is not last_now:
            now_at = self._micros(now)
        return at > now_at - span

    def record(self, fingerprint: str, now: datetime, window: timedelta | None) -> None:
        if window is not None:
            span = window // _MICRO
            if span > self._retention:
                self._retention = span
        at = self._micros(now)
        self._last[fingerprint] = at
        self._order.append((at, fingerprint))
        self.prune(now)

    def prune(self, now: datetime) -> None:
        horizon = self._micros(now) - self._retention
        order, last = self._order, self._last
        while order and order[0][0] <= horizon:
            at, fingerprint = order.popleft()
            if last.get(fingerprint) == at:
                del last[fingerprint]

    def image(self) -> DuplicateWindowImage:
        latest = self._last
        return DuplicateWindowImage(
            retention=self._retention,
            entries=[
                FingerprintImage(at, fingerprint)
                for at, fingerprint in self._order
                if latest.get(fingerprint) == at
            ],
        )

    @classmethod
    def from_image(cls, image: DuplicateWindowImage) -> DuplicateWindow:
        window = cls()
        window._retention = image.retention
        for entry in image.entries:
            window._last[entry.fingerprint] = entry.at
            window._order.append((entry.at, entry.fingerprint))
        return window
