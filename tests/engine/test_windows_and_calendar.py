"""Sliding windows count exactly (now - window, now]; the day rolls deterministically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.engine.calendar import next_roll
from ordergate.engine.windows import DuplicateWindow, RateWindows, WindowKind
from ordergate.model.values import utc

T0 = utc(2026, 1, 5, 14)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=300),
    window_ms=st.integers(min_value=1, max_value=20_000),
)
def test_rate_window_count_matches_brute_force(steps: list[int], window_ms: int) -> None:
    windows = RateWindows()
    window = timedelta(milliseconds=window_ms)
    now = T0
    recorded: list[datetime] = []
    for step in steps:
        now += timedelta(milliseconds=step)
        windows.record(WindowKind.ACCOUNT, "A", now, window)
        recorded.append(now)
        expected = sum(1 for at in recorded if now - window < at <= now)
        assert windows.count(WindowKind.ACCOUNT, "A", now, window) == expected
    windows.prune(now)
    expected = sum(1 for at in recorded if now - window < at <= now)
    assert windows.count(WindowKind.ACCOUNT, "A", now, window) == expected
    restored = RateWindows.from_image(windows.image())
    assert restored.count(WindowKind.ACCOUNT, "A", now, window) == expected


def test_pruning_drops_empty_series() -> None:
    windows = RateWindows()
    windows.record(WindowKind.SYMBOL, "X", T0, timedelta(seconds=1))
    windows.prune(T0 + timedelta(seconds=2))
    assert windows.image().series == []


def test_duplicate_window_expires_fingerprints() -> None:
    window = DuplicateWindow()
    span = timedelta(seconds=5)
    window.record("fp", T0, span)
    assert window.seen("fp", T0 + timedelta(seconds=4), span)
    assert not window.seen("fp", T0 + timedelta(seconds=5), span)
    window.prune(T0 + timedelta(seconds=6))
    assert len(window) == 0


def test_utc_day_rolls_at_midnight() -> None:
    assert next_roll(utc(2026, 1, 5, 23, 59, 59), None) == utc(2026, 1, 6)
    assert next_roll(utc(2026, 1, 6), None) == utc(2026, 1, 7)


def test_exchange_calendar_rolls_at_session_close_skipping_holidays() -> None:
    # 2024-07-03 is a half day (close 17:00 UTC); 2024-07-04 is a holiday.
    assert next_roll(utc(2024, 7, 3, 12), "XNYS") == datetime(2024, 7, 3, 17, tzinfo=UTC)
    assert next_roll(utc(2024, 7, 3, 17), "XNYS") == datetime(2024, 7, 5, 20, tzinfo=UTC)
    # a Saturday rolls at Monday's close
    assert next_roll(utc(2024, 7, 6, 12), "XNYS") == datetime(2024, 7, 8, 20, tzinfo=UTC)
