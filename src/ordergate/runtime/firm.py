"""Firm-wide limits shared by every gateway, kept in Redis and changed only by atomic scripts.

Three limits span shards, so no single engine can hold them:

* the firm kill switch: one key; set by an operator (`FirmStore.set_kill`), seen by every
  gateway at its next heartbeat; each kill is numbered (see "Going back in time" below).
  Releasing it records who released it and why in a second key (the last release), which
  gateways journal as the detail of the release;
* firm gross exposure: each shard publishes its own gross (a hash field per shard); the firm
  total is the sum. A shard that stops publishing, stopped or dead, keeps its last value: its
  positions still exist. `exchange()` publishes this shard's gross and reads the kill switch
  and every other shard's gross in ONE script, so a reading is a consistent cut; `publish()`
  only publishes (after a batch that changed the gross, and when the shard stops);
* firm order rate (THR-007): a sliding window of reservations (a sorted set scored by the
  Redis server's clock, so every gateway agrees on time). `reserve()` takes, in ONE script
  for a whole batch, a slot per intent while the window has room. Members are keyed by
  (account, strategy, intent_id), so a retried intent reuses its slot instead of taking a
  second (the engine sends at most one order per intent_id); each reservation says whether
  it took a new slot (`fresh`), so the shell gives back (`release()`) only the slots of
  intents that took them and were then denied, never a slot a later duplicate reused.

Determinism: none of this reaches the engine directly. The shell journals what Redis said
as input events (`FirmState` at heartbeats, `FirmRateLimited` right before an intent that
found no room), so replaying the journal decides everything the same way without Redis.

Failure: any Redis error raises `FirmUnavailable`; the shell turns it into
`DependencyStatus(dependency="redis", healthy=False, code="SYS-007")` through a circuit
breaker, and the engine fails closed (REDUCE_ONLY under the default policy settings).
Sums are exact: Redis stores decimal strings and Python adds them as `Decimal`.

Lost data: Redis may come back empty (restarted without persistence, flushed, replaced), and
an empty store reads like a firm with no kill switch and no other exposure. So the store has
an identity (`firm:store`: a random id and when it was set up), written once by the first
exchange that finds none. `exchange()` says the store LOST ITS DATA (`FirmReading.lost`) when
the identity is not the one this `FirmStore` saw before, or when the caller has talked to a
store before (its journal holds a FirmState) and its own gross is missing from this one (a
shard's field is only ever written by that shard). `publish()` writes only into the store it
saw (same identity), so a wiped store never gets a shard's gross back without the loss being
noticed. The gateway that notices records it (`record_loss`): what it found, and the shards it
knew that have not reported since, for `firm status`.

Going back in time: Redis may also come back holding OLDER data under the same identity
(restarted from an older RDB snapshot, an AOF that lost its last second, a replica that lagged
promoted), where a kill switch engaged since is gone, an older release note is back, and other
shards' exposure is older. Two things catch it:

* every kill has a number (`kills` in `firm:store`, raised by each `set_kill(True)`), carried
  in the kill's detail ("risk: drill (firm kill #7)") and so journaled by every gateway with its
  FirmState; a release records the highest number it covers (`released`). A gateway that knows
  kill #7 engaged (`keep_kill`) accepts a store without a kill only with a release of #7 or
  later; none (wiped) or one of an earlier kill (went back) is a store that lost its data: the
  script engages the known kill again, atomically. A missing kill key is never a release.
* every write the gateways make counts in `writes` (`firm:store`), which only grows; each
  `FirmStore` remembers the count its last write left. A store with the same identity and a
  lower count went back in time.

A store found gone back in time is treated as one that lost its data, and made to look like
one to every gateway: the script gives it a new identity, drops the other shards' (older)
gross, lists them as not reported since, and puts the caller's own gross and known kill back.

The `lost` note stays while a shard known before the loss has not reported again (`firm:
unreported`) or a shard that found the loss still holds new risk (`firm:held`: each exchange
that finds the loss adds the caller; a later exchange of a caller whose gateway trades again,
`resumed`, removes it). The exchange that leaves both empty removes the note.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import redis
import structlog

from ordergate.journal import redact_url
from ordergate.model.intent import OrderIntent
from ordergate.model.values import ZERO

log = structlog.get_logger("ordergate.runtime.firm")

REDIS_DEPENDENCY = "redis"
DEFAULT_PREFIX = "ordergate:"

# The number in a kill's detail: "<who>: <why> (firm kill #7)" (0 for a detail without one).
_KILL_NUMBER_LUA = """
local function kill_number(detail)
  return tonumber(string.match(detail, ' %(firm kill #(%d+)%)$') or '0')
end
"""

# KEYS: gross, kill, released, store, unreported, held. ARGV: 1 shard, 2 its gross, 3 an id
# and 4 a time for a store that has none (or gets a new one), 5 the kill detail to keep ('' none)
# and 6 its number, 7 the store id the caller saw ('' none) and 8 the write count it saw, 9 '1'
# if the caller talked to a store before, 10 '1' if the caller's gateway trades again (resumed).
# Reply: {kill, release note, gross hash, store id, 1 if the id was set now, 1 if the shard's own
# gross was there before, 1 if the kill switch was engaged again from ARGV[5], 1 if the store
# went back in time (and got a new id), 1 if it lost its data, the write count now}.
_EXCHANGE = _KILL_NUMBER_LUA + """
local had = redis.call('HEXISTS', KEYS[1], ARGV[1])
local id = redis.call('HGET', KEYS[4], 'id')
local writes = tonumber(redis.call('HGET', KEYS[4], 'writes') or '0')
local seen_writes = tonumber(ARGV[8])
local created, back, kept, stale = 0, 0, 0, 0
if not id then
  id = ARGV[3]
  redis.call('HSET', KEYS[4], 'id', id, 'since', ARGV[4])
  created = 1
elseif id == ARGV[7] and writes < seen_writes then
  back = 1
end
local kill = redis.call('GET', KEYS[2])
local released = redis.call('GET', KEYS[3])
if ARGV[5] ~= '' then
  local keep = tonumber(ARGV[6])
  if tonumber(redis.call('HGET', KEYS[4], 'kills') or '0') < keep then
    redis.call('HSET', KEYS[4], 'kills', keep)
  end
  if not kill then
    local covers = tonumber(redis.call('HGET', KEYS[4], 'released') or '0')
    if not released or covers < keep then
      redis.call('SET', KEYS[2], ARGV[5])
      redis.call('DEL', KEYS[3])
      redis.call('HDEL', KEYS[4], 'released')
      kill, released, kept, stale = ARGV[5], false, 1, 1
    end
  elseif kill_number(kill) < keep then
    stale = 1
  end
end
if stale == 1 and created == 0 then back = 1 end
if back == 1 then
  local others = {}
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if name ~= ARGV[1] then others[#others + 1] = name end
  end
  redis.call('DEL', KEYS[1], KEYS[5], KEYS[6])
  id = ARGV[3]
  redis.call('HSET', KEYS[4], 'id', id, 'since', ARGV[4])
  redis.call('HDEL', KEYS[4], 'lost')
  for _, name in ipairs(others) do redis.call('SADD', KEYS[5], name) end
  if writes < seen_writes then redis.call('HSET', KEYS[4], 'writes', seen_writes) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[5], ARGV[1])
local lost = 0
if back == 1 or kept == 1 or (ARGV[7] ~= '' and id ~= ARGV[7])
    or (ARGV[9] == '1' and had == 0) then
  lost = 1
  redis.call('SADD', KEYS[6], ARGV[1])
elseif ARGV[10] == '1' then
  redis.call('SREM', KEYS[6], ARGV[1])
  if redis.call('SCARD', KEYS[6]) == 0 and redis.call('SCARD', KEYS[5]) == 0 then
    redis.call('HDEL', KEYS[4], 'lost')
  end
end
writes = redis.call('HINCRBY', KEYS[4], 'writes', 1)
return {kill or '', released or '', redis.call('HGETALL', KEYS[1]), id, created, had, kept, back,
        lost, writes}
"""

# KEYS: gross, store, unreported. ARGV: shard, its gross, the store id and write count it saw.
# The write count now, or 0 and nothing written: the store is not the one the shard saw (it
# lost its data or was replaced) or went back in time (fewer writes than the shard saw).
_PUBLISH = """
if redis.call('HGET', KEYS[2], 'id') ~= ARGV[3] then return 0 end
if tonumber(redis.call('HGET', KEYS[2], 'writes') or '0') < tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[1])
return redis.call('HINCRBY', KEYS[2], 'writes', 1)
"""

# KEYS: kill, released, store. ARGV: '1' engage or '0' release, the detail (who and why). An
# engaged kill gets the next number, in its detail; a release covers every kill numbered so far.
# Reply: the kill's number (engaged) or the highest one the release covers.
_SET_KILL = """
local number = tonumber(redis.call('HGET', KEYS[3], 'kills') or '0')
if ARGV[1] == '1' then
  number = number + 1
  redis.call('HSET', KEYS[3], 'kills', number)
  redis.call('SET', KEYS[1], ARGV[2] .. ' (firm kill #' .. number .. ')')
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[3], 'released')
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('HSET', KEYS[3], 'released', number)
end
redis.call('HINCRBY', KEYS[3], 'writes', 1)
return number
"""

# KEYS: store, gross, unreported. ARGV: the store id, what was found, the shards known before.
# The first note stays; a shard known before that has not reported since is listed.
_RECORD_LOSS = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('HSETNX', KEYS[1], 'lost', ARGV[2])
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then
    redis.call('SADD', KEYS[3], ARGV[i])
  end
end
return 1
"""

# Reply: {count after the batch, one flag per member in argument order}: 2 a new slot taken,
# 1 the member's existing slot (a retry, or a reused intent_id), 0 refused.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local granted = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    granted[#granted + 1] = 1
  elseif count < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[i])
    count = count + 1
    granted[#granted + 1] = 2
  else
    granted[#granted + 1] = 0
  end
end
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
return {count, granted}
"""


class FirmUnavailable(Exception):
    """Redis could not be asked or answered nonsense; firm limits must fail closed. `where`
    is the store's URL (password masked); `problem` says what went wrong, in words that
    follow "the firm limits store at <where> ..." (`words`)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    @property
    def words(self) -> str:
        """A sentence for an operator: which store, and what went wrong with it."""
        return f"the firm limits store at {self.where} {self.problem}"


class FirmUrlError(ValueError):
    """The firm store's URL is not a Redis URL. The message never quotes the URL: a malformed
    one cannot be trusted to show where its password ends."""


_REDIS_SCHEMES = ("redis", "rediss", "unix")
_BAD_OPTION = re.compile(r"Invalid value for '(\w+)'")


def check_redis_url(url: str) -> None:
    """Raise `FirmUrlError` unless `url` is a Redis URL the client accepts (nothing is
    connected)."""
    expected = "expected redis://[:password@]host[:port][/db], rediss://... or unix://path"
    try:
        parts = urlsplit(url)
    except ValueError:
        raise FirmUrlError(f"not a URL ({expected})") from None
    if parts.scheme not in _REDIS_SCHEMES:
        raise FirmUrlError(f"not a Redis URL ({expected})")
    try:
        _ = parts.port  # reading it parses it
    except ValueError:
        raise FirmUrlError("the port is not a number from 0 to 65535 (a password with '/', "
                           "'?', '#' or '@' must be percent-encoded)") from None
    try:
        redis.Redis.from_url(url).close()  # builds the client only: nothing is connected
    except ValueError as exc:
        option = _BAD_OPTION.search(str(exc))
        if option is not None:
            raise FirmUrlError(f"option '{option.group(1)}': not a valid value") from None
        raise FirmUrlError(f"the database number or an option is not valid ({expected})") \
            from None


@dataclass(frozen=True, slots=True)
class FirmRate:
    """At most `max_orders` intents in any `window`, across every gateway of the firm."""

    max_orders: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.max_orders < 1:
            raise ValueError(f"max_orders: expected at least 1, got {self.max_orders}")
        if self.window <= timedelta(0):
            raise ValueError(f"window: expected a positive duration, got {self.window}")


@dataclass(frozen=True, slots=True)
class FirmReading:
    """One consistent cut of the shared store."""

    kill: bool
    kill_detail: str
    others_gross: Decimal
    shards: int
    release_detail: str = ""  # who released the kill switch last, and why ('' if nobody)
    names: tuple[str, ...] = ()  # every shard with a published gross, this one included
    store_id: str = ""
    lost: bool = False  # the store lost its data since this shard last saw it (see module doc)
    kill_kept: bool = False  # the store held no kill switch and no release of it: engaged again
    went_back: bool = False  # the store came back holding older data (see module doc)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The firm-rate answer for one intent."""

    intent: OrderIntent
    member: str
    granted: bool
    fresh: bool = False  # granted a new slot, not the one this member already held


@dataclass(frozen=True, slots=True)
class ReserveResult:
    reservations: list[Reservation]
    count: int


def rate_member(intent: OrderIntent) -> str:
    return f"{intent.account}\x1f{intent.strategy}\x1f{intent.intent_id}"


_KILL_NUMBER = re.compile(r" \(firm kill #(\d+)\)\Z")


def kill_number(detail: str) -> int:
    """The number of the firm kill whose detail (as the store gives it and gateways journal it)
    is `detail`: "risk: drill (firm kill #7)" is 7; a detail without one (written before kills
    were numbered) is 0, which any release covers."""
    match = _KILL_NUMBER.search(detail)
    return 0 if match is None else int(match.group(1))


# what `store_info` shows of `firm:store` (its other fields are the scripts' counters)
_STORE_INFO = frozenset({"id", "since", "lost"})


class FirmStore:
    """The shared store as one shard's gateway sees it. `prefix` namespaces every key (one
    firm per prefix)."""

    def __init__(self, url: str, shard: str, *, prefix: str = DEFAULT_PREFIX,
                 timeout_s: float = 0.5) -> None:
        self.shard = shard
        self.prefix = prefix
        check_redis_url(url)
        self._where = redact_url(url)
        self._gross_key = f"{prefix}firm:gross"
        self._kill_key = f"{prefix}firm:kill"
        self._released_key = f"{prefix}firm:kill_released"
        self._rate_key = f"{prefix}firm:orders"
        self._store_key = f"{prefix}firm:store"
        self._unreported_key = f"{prefix}firm:unreported"
        self._held_key = f"{prefix}firm:held"
        self._client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry_on_timeout=False, decode_responses=True)
        self._exchange = self._client.register_script(_EXCHANGE)
        self._publish = self._client.register_script(_PUBLISH)
        self._record_loss = self._client.register_script(_RECORD_LOSS)
        self._reserve = self._client.register_script(_RESERVE)
        self._set_kill = self._client.register_script(_SET_KILL)
        self.store_id: str | None = None  # the store's identity at the last exchange
        self._writes = 0  # the store's write count this shard's last write left there

    @property
    def where(self) -> str:
        """The store's URL, password masked."""
        return self._where

    def exchange(self, own_gross: Decimal, *, seen_before: bool = False,
                 keep_kill: str = "", resumed: bool = False) -> FirmReading:
        """Publish this shard's gross exposure; read the kill switch and the others' gross.
        `seen_before`: the caller has talked to a firm store before (its journal says so), so
        a store without its gross lost its data. `keep_kill`: the detail (with its number) of
        the kill switch the caller knows engaged, engaged again if the store holds neither it
        nor a release covering it. `resumed`: the caller's gateway trades again (not held), so
        it no longer keeps the store's `lost` note (see the module doc)."""
        _check_gross(own_gross)
        fresh = uuid.uuid4().hex
        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        reply = self._call(self._exchange,
                           [self._gross_key, self._kill_key, self._released_key,
                            self._store_key, self._unreported_key, self._held_key],
                           [self.shard, str(own_gross), fresh, since, keep_kill,
                            kill_number(keep_kill), self.store_id or "", self._writes,
                            int(seen_before), int(resumed)])
        try:
            kill, released, flat = reply[0], reply[1], reply[2]
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            store_id, kept, went_back = str(reply[3]), int(reply[6]) == 1, int(reply[7]) == 1
            lost, writes = int(reply[8]) == 1, int(reply[9])
        except (IndexError, TypeError, ValueError) as exc:
            raise FirmUnavailable(self._where, "answered what is not a firm reading "
                                               f"({reply!r})") from exc
        others = ZERO
        for shard, text in sorted(fields.items()):
            if shard == self.shard:
                continue
            try:
                value = Decimal(text)
            except InvalidOperation:
                value = Decimal("NaN")
            if not value.is_finite() or value < 0:
                raise FirmUnavailable(self._where, f"holds a gross exposure that is not a "
                                      f"non-negative decimal ({self._gross_key}: shard "
                                      f"'{shard}': '{text}')")
            others += value
        self.store_id, self._writes = store_id, writes
        return FirmReading(kill=bool(kill), kill_detail=str(kill), others_gross=others,
                           shards=len(fields), release_detail=str(released),
                           names=tuple(sorted(fields)), store_id=store_id, lost=lost,
                           kill_kept=kept, went_back=went_back)

    def publish(self, own_gross: Decimal) -> bool:
        """Publish this shard's gross exposure only (after a batch, and when it stops), into
        the store the last exchange saw. False, and nothing written, when there was none or
        the store is another one now (it lost its data) or went back in time: the next
        exchange says so."""
        _check_gross(own_gross)
        if self.store_id is None:
            return False
        written = self._call(self._publish,
                             [self._gross_key, self._store_key, self._unreported_key],
                             [self.shard, str(own_gross), self.store_id, self._writes])
        try:
            writes = int(written)
        except (TypeError, ValueError) as exc:
            raise FirmUnavailable(self._where, "answered the publication of a gross exposure "
                                               f"with what is not a count ({written!r})") from exc
        if writes <= 0:
            return False
        self._writes = writes
        return True

    def record_loss(self, found: str, known: Sequence[str]) -> None:
        """Note in the store that it lost its data (`found`: who found it, when; the first
        note stays) and which of the `known` shards have not reported since (for `firm
        status`; each leaves the list when it publishes again)."""
        if self.store_id is None:
            return
        self._call(self._record_loss,
                   [self._store_key, self._gross_key, self._unreported_key],
                   [self.store_id, found, *known])

    def store_info(self) -> tuple[dict[str, str], list[str]]:
        """The store's identity (id, since, and `lost` from when a gateway found it had lost its
        data until every shard known before has reported and been resumed; empty before any
        gateway reported) and the shards known before the loss that have not reported since,
        sorted (for status views)."""
        def read() -> tuple[dict[str, str], list[str]]:
            info = self._client.hgetall(self._store_key)
            unreported = self._client.smembers(self._unreported_key)
            return ({str(key): str(value) for key, value in info.items()
                     if key in _STORE_INFO},
                    sorted(str(name) for name in unreported))
        result: tuple[dict[str, str], list[str]] = self._call_plain(read)
        return result

    def reserve(self, intents: Sequence[OrderIntent], rate: FirmRate) -> ReserveResult:
        """Take a firm-rate slot for each intent, in order, while the window has room."""
        if not intents:
            return ReserveResult(reservations=[], count=0)
        members = [rate_member(intent) for intent in intents]
        window_us = math.ceil(rate.window / timedelta(microseconds=1))
        reply = self._call(self._reserve, [self._rate_key],
                           [window_us, rate.max_orders, *members])
        try:
            count = int(reply[0])
            flags = [int(flag) for flag in reply[1]]
        except (IndexError, TypeError, ValueError) as exc:
            raise FirmUnavailable(self._where, "answered the firm-rate reservation with "
                                               f"what is not one ({reply!r})") from exc
        if len(flags) != len(members):
            raise FirmUnavailable(self._where, f"answered the firm-rate reservation for "
                                               f"{len(flags)} of {len(members)} intents")
        return ReserveResult(
            reservations=[Reservation(intent=intent, member=member, granted=flag >= 1,
                                      fresh=flag == 2)
                          for intent, member, flag in zip(intents, members, flags, strict=True)],
            count=count)

    def release(self, members: Sequence[str]) -> None:
        """Give back slots (of intents the engine denied), so they do not crowd the window."""
        if members:
            self._call_plain(lambda: self._client.zrem(self._rate_key, *members))

    def set_kill(self, engaged: bool, detail: str = "") -> int:
        """Engage or release the firm kill switch; `detail` says who and why. An engaged kill
        gets the next number, kept in its detail ("risk: drill (firm kill #7)"); a release
        covers every kill numbered so far. All of it changes in one script, so a gateway never
        reads an engaged switch with a release note. Returns the kill's number (engaged) or the
        highest number the release covers."""
        if engaged:
            detail = detail or "firm kill switch engaged"
        else:
            detail = detail or "firm kill switch released"
        number = self._call(self._set_kill, [self._kill_key, self._released_key,
                                             self._store_key], [int(engaged), detail])
        try:
            return int(number)
        except (TypeError, ValueError) as exc:
            raise FirmUnavailable(self._where, "answered the kill switch's change with what is "
                                               f"not a number ({number!r})") from exc

    def kill_switch(self) -> str:
        """The firm kill switch's detail (who and why, and its number) when engaged, else ''."""
        value = self._call_plain(lambda: self._client.get(self._kill_key))
        return "" if value is None else str(value)

    def kill_released(self) -> str:
        """Who released the firm kill switch last, and why ('' if never, or engaged since)."""
        value = self._call_plain(lambda: self._client.get(self._released_key))
        return "" if value is None else str(value)

    def published(self) -> dict[str, Decimal]:
        """Every shard's published gross exposure (for status views)."""
        fields: dict[str, str] = self._call_plain(lambda: self._client.hgetall(self._gross_key))
        try:
            return {shard: Decimal(value) for shard, value in sorted(fields.items())}
        except InvalidOperation as exc:
            raise FirmUnavailable(self._where, f"holds a published gross exposure that is "
                                               f"not a decimal ({self._gross_key})") from exc

    def order_count(self, rate: FirmRate) -> int:
        """Reservations currently in the firm-rate window (read-only; for status views)."""
        window_us = math.ceil(rate.window / timedelta(microseconds=1))

        def count() -> int:
            seconds, micros = self._client.time()
            now = seconds * 1_000_000 + micros
            return int(self._client.zcount(self._rate_key, f"({now - window_us}", "+inf"))
        result: int = self._call_plain(count)
        return result

    def close(self) -> None:
        self._client.close()

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return self._call_plain(lambda: script(keys=keys, args=args))

    def _call_plain(self, call: Any) -> Any:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise FirmUnavailable(self._where, f"cannot be reached ({_said(exc)})") from exc
        except redis.RedisError as exc:
            raise FirmUnavailable(self._where, f"refused the request ({_said(exc)})") from exc


def _said(exc: redis.RedisError) -> str:
    """The client's words for `exc` ("Error 111 connecting to host:6379. Connection
    refused."), or its kind when it has none."""
    return str(exc).strip() or type(exc).__name__


def _check_gross(own_gross: Decimal) -> None:
    if not own_gross.is_finite() or own_gross < 0:
        raise ValueError(f"own_gross: expected a finite non-negative decimal, got '{own_gross}'")
