"""Recovery decodes only the OUTPUT records it acts on (dispatches and cancels), picked by how
their canonical encoding begins; every other output is skipped undecoded. These tests prove
the prefix picks exactly those two kinds."""

from __future__ import annotations

import typing
from pathlib import Path

import msgspec
from tests.runtime.scenario import demo_policy_path, scenario_events

from ordergate.brokers.sim import FillModel, SimBroker, SimConfig
from ordergate.journal import RecordKind
from ordergate.model.events import CancelOrder, Dispatch, OutputEvent
from ordergate.policy.loader import load_policy
from ordergate.runtime.loop import ACTION_PREFIXES, Runtime, decode_output


def test_only_dispatch_and_cancel_tags_match_an_action_prefix() -> None:
    kinds = typing.get_args(OutputEvent)
    assert Dispatch in kinds and CancelOrder in kinds
    for kind in kinds:
        config = kind.__struct_config__
        assert config.tag_field == "type"
        # how an encoded struct of this kind begins: its tag, then the next field
        opening = b'{"type":' + msgspec.json.encode(config.tag) + b","
        assert (opening in ACTION_PREFIXES) == (kind in (Dispatch, CancelOrder)), kind


def test_every_journaled_output_matches_a_prefix_exactly_when_it_is_an_action(
        tmp_path: Path) -> None:
    runtime = Runtime.open(f"sqlite:///{tmp_path / 'j.db'}", load_policy(demo_policy_path()),
                           SimBroker(SimConfig(fill_model=FillModel.NEXT_MARKET)))
    events = scenario_events(40)
    for start in range(0, len(events), 16):
        runtime.process(events[start:start + 16])
    seen: set[type] = set()
    for record in runtime.journal.read():
        if record.kind is RecordKind.OUTPUT:
            output = decode_output(record.payload)
            seen.add(type(output))
            assert record.payload.startswith(ACTION_PREFIXES) == \
                isinstance(output, Dispatch | CancelOrder), record.payload[:40]
    runtime.close()
    assert {Dispatch, CancelOrder} <= seen and len(seen) > 2
