"""Decisions the bounded decision index has let go, read back from the journal.

`GET /v1/decisions/{intent_id}` answers from the index (`bridge.DecisionIndex`); once the
index has dropped its oldest records, a miss may still be an intent the gateway decided. Its
record is then read from the journal with the reader `ordergate decisions` uses
(`evidence.decisions.find_decision`), on a worker thread so the event loop keeps serving.

Only a miss costs anything, and it stays bounded:

* nothing is read while the index has never dropped a record: a miss is then an intent that
  was never decided (the index was rebuilt from the whole journal at start-up);
* one journal scan at a time; other misses wait for it;
* the answers are remembered (at most `cache_size` of them). A record found stays valid. An
  intent found in no record stays unknown until the index drops more records: everything
  decided after the scan began is in the index until then.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import msgspec

from ordergate.evidence.decisions import find_decision
from ordergate.journal.base import Journal
from ordergate.model.events import ShadowDecision
from ordergate.service.bridge import DecisionIndex, DecisionRecord

DEFAULT_CACHE_SIZE = 1024


class _Answer(msgspec.Struct, frozen=True):
    record: DecisionRecord | None
    first_position: int  # the index's first position when the scan began


class JournalDecisions:
    """The decision records of intents no longer in the index, from the journal."""

    def __init__(self, journal: Journal, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._journal = journal
        self._cache_size = cache_size
        self._answers: OrderedDict[str, _Answer] = OrderedDict()
        self._scanning = asyncio.Lock()
        self.scans = 0  # journal scans made (for tests and logs)

    async def get(self, intent_id: str, index: DecisionIndex) -> DecisionRecord | None:
        """The record of `intent_id`, called after `index` missed it."""
        if index.first_position == 1:
            return None  # the index holds every decision made
        answer = self._remembered(intent_id, index)
        if answer is not None:
            return answer.record
        async with self._scanning:
            answer = self._remembered(intent_id, index)
            if answer is None:
                first_position = index.first_position
                record = await asyncio.to_thread(self._find, intent_id)
                answer = _Answer(record, first_position)
                self._remember(intent_id, answer)
        return answer.record

    def _remembered(self, intent_id: str, index: DecisionIndex) -> _Answer | None:
        answer = self._answers.get(intent_id)
        if answer is None:
            return None
        if answer.record is None and answer.first_position != index.first_position:
            # the index has dropped records since: the intent may be among them now
            del self._answers[intent_id]
            return None
        self._answers.move_to_end(intent_id)
        return answer

    def _remember(self, intent_id: str, answer: _Answer) -> None:
        self._answers[intent_id] = answer
        while len(self._answers) > self._cache_size:
            self._answers.popitem(last=False)

    def _find(self, intent_id: str) -> DecisionRecord | None:
        self.scans += 1
        detail = find_decision(self._journal, intent_id)
        if detail is None or detail.intent is None:
            return None
        shadow = next((output for output in detail.outputs
                       if isinstance(output, ShadowDecision)
                       and output.intent_id == intent_id), None)
        return DecisionRecord(intent=detail.intent, decision=detail.decision, shadow=shadow)
