"""A reason's meaning tells an owner what lifts it: SYS-006 (the journal could not be written)
lifts only when the gateway restarts on a journal it can write, never by itself, and SYS-007 is
raised for a firm limits store that lost its data or came back holding older data as well as
for a circuit breaker that is open, so its meaning covers both."""

from __future__ import annotations

from ordergate.model.reasons import reason


def test_a_journal_that_could_not_be_written_is_lifted_only_by_a_restart() -> None:
    meaning = reason("SYS-006").meaning
    assert "restarts on a journal it can write" in meaning
    assert "durable again" not in meaning


def test_the_circuit_open_reason_also_means_a_firm_store_that_lost_its_data() -> None:
    meaning = reason("SYS-007").meaning
    assert "circuit breaker is open" in meaning
    assert "firm limits store" in meaning and "lost its data" in meaning
    assert "older data" in meaning
