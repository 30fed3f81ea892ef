"""An intent's `tags` are a few labels about the strategy, bounded: at most 32, keys of at most 64
characters, values of at most 256. More is refused naming `tags`, before it is journaled (an
events file line has no size limit of its own, and every replay re-reads what was journaled)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ordergate.model.events import InputEvent
from ordergate.model.intent import MAX_TAGS
from ordergate.model.values import describe_error

_decode = msgspec.json.Decoder(InputEvent).decode
NO_CONTROLS = "text without control characters (no line breaks, tabs or escapes)"
INTENT: dict[str, Any] = {"type": "intent", "intent_id": "i", "ts": "2026-03-02T14:30:00Z",
                          "account": "A", "strategy": "s", "symbol": "X", "side": "buy",
                          "qty": "1"}


def test_a_strategys_labels_within_the_bounds_are_kept() -> None:
    tags = {f"k{number}": "v" * 256 for number in range(MAX_TAGS)} | {"m" * 64: ""}
    tags.pop("k0")
    intent = _decode(msgspec.json.encode({**INTENT, "tags": tags}))
    assert intent.tags == tags


@pytest.mark.parametrize(("tags", "said"), [
    ({f"k{number}": "v" for number in range(MAX_TAGS + 1)},
     "field tags: Expected `object` of length <= 32"),
    ({"k" * 65: "v"}, "field tags (a key): Expected `str` of length <= 64"),
    ({"model": "v" * 257}, "field tags[...]: Expected `str` of length <= 256"),
    ({"note": "ok\x1b[2J"}, f"field tags[...]: Expected {NO_CONTROLS}"),
    ({"a\x00b": "v"}, f"field tags (a key): Expected {NO_CONTROLS}"),
    ({"line": "one\ntwo"}, f"field tags[...]: Expected {NO_CONTROLS}"),
])
def test_tags_beyond_the_bounds_are_refused_naming_tags(tags: dict[str, str],
                                                        said: str) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        _decode(msgspec.json.encode({**INTENT, "tags": tags}))
    assert describe_error(refused.value) == said
