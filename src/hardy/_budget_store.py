"""A retry budget shared by processes through a :class:`hardy.RedisStore`.

Every process keeps its budget's full local accounting (its own calls and
retries, hardy/policies/budget.py) and decides locally while Redis cannot be
reached. With Redis, a retry is decided on the server, in one Lua script over
one hash per budget (``{prefix}{{name}}:budget``: a field per slice of the
window, on the server's clock): the process adds the deposits of the calls it
counted since it last wrote (spread over the time since, as the local
budget does), and the script sums the ten slices, adds the reserve and takes
the withdrawal if it is covered. So withdrawals are atomic across processes;
a call reaches the server at its process's next retry, its next
``balance``/``statistics`` read, or within one slice (a flusher thread per
budget writes what calls counted every ``window / 10`` seconds). Calls make no
round trip; a retry asked for makes one.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from typing import Any

__all__ = ["SCRIPT", "SharedBudget"]

# KEYS[1]: the budget's hash. ARGV: units to add, the seconds they were
# counted over, the slice length, the withdrawal, the reserve, 1 to ask for
# a retry (0: only add and read), the key's time to live in ms.
SCRIPT = """
local key = KEYS[1]
local units = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local slice = tonumber(ARGV[3])
local withdrawal = tonumber(ARGV[4])
local reserve = tonumber(ARGV[5])
local ask = ARGV[6] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local target = math.floor(now / slice)
local oldest = target - 9
if units > 0 then
  local start = now - span
  local first = math.floor(start / slice)
  local given = 0
  if span > 0 and first < oldest then
    first = oldest
    given = math.floor(units * ((oldest * slice) - start) / span)
    if given > units then given = units end
  end
  for n = first, target do
    local cum = units
    if n < target and span > 0 then
      cum = math.floor(units * (((n + 1) * slice) - start) / span)
      if cum > units then cum = units end
    end
    if cum > given then
      redis.call('HINCRBY', key, n, cum - given)
      given = cum
    end
  end
end
local sum = 0
local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do
  if tonumber(fields[i]) < oldest then
    redis.call('HDEL', key, fields[i])
  else
    sum = sum + tonumber(fields[i + 1])
  end
end
local allowed = 0
if ask and reserve + sum >= withdrawal then
  redis.call('HINCRBY', key, target, -withdrawal)
  sum = sum - withdrawal
  allowed = 1
end
redis.call('PEXPIRE', key, tonumber(ARGV[7]))
return {allowed, string.format('%.0f', sum)}
"""

_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()


class SharedBudget:
    """The part of a :class:`hardy.RetryBudget` that talks to its store (both cores' ledgers hold one)."""

    __slots__ = ("_flusher", "_lock", "_sent", "_sent_at", "_window", "key", "reserve", "store", "withdrawal")

    def __init__(self, store: Any, name: str, window: float, reserve: int, withdrawal: int, now: float) -> None:
        self.store = store
        self.key = f"{store.prefix}{{{name}}}:budget"
        self.reserve = reserve
        self.withdrawal = withdrawal
        self._lock = threading.Lock()
        self._sent = 0  # calls already written
        self._sent_at = now  # when, on the budget's clock
        self._flusher: threading.Thread | None = None
        self._window = window

    def ask(self, ledger: Any, now: float, want: bool) -> tuple[bool, int] | None:
        """Write the calls counted since the last write; with ``want``, ask for one retry.

        ``(allowed, units in the window)`` from the server, or ``None`` when
        the store cannot be used now (the caller decides locally).
        """
        store = self.store
        store._forked()
        store._ensure_thread()  # it reconnects after an outage
        self._ensure_flusher(ledger)
        if not store.available or store._closed:
            return None
        deposit = ledger._deposit_units()
        with self._lock:
            calls = ledger._counts()[0]
            fresh = calls - self._sent
            span = max(0.0, now - self._sent_at)
            self._sent = calls
            self._sent_at = max(now, self._sent_at)
        ttl_ms = int(self._window * 2000) + 1000
        asked = 1 if want else 0
        args = [fresh * deposit, repr(span), repr(self._window / 10), self.withdrawal, self.reserve, asked, ttl_ms]
        try:
            reply = self._eval(args)
        except store._errors as exc:
            with self._lock:
                self._sent -= fresh  # written with the next one
            store._down(exc)
            return None
        return bool(int(reply[0])), int(reply[1])

    def _eval(self, args: list[Any]) -> Any:
        client = self.store._client
        try:
            return client.evalsha(_SHA, 1, self.key, *args)
        except self.store._redis.exceptions.NoScriptError:
            client.script_load(SCRIPT)
            return client.evalsha(_SHA, 1, self.key, *args)

    def _ensure_flusher(self, ledger: Any) -> None:
        if self._flusher is None or not self._flusher.is_alive():
            with self._lock:
                if self._flusher is None or not self._flusher.is_alive():
                    self._flusher = threading.Thread(
                        target=_flush_while_alive,
                        args=(weakref.ref(ledger), self, self._window / 10),
                        daemon=True,
                        name="hardy-budget-flush",
                    )
                    self._flusher.start()


def _flush_while_alive(ref: weakref.ReferenceType[Any], shared: SharedBudget, every: float) -> None:
    """Write a budget's counted calls once a slice, so a process that never retries still funds the others.

    It holds the ledger weakly: a budget that is gone (or whose store is closed) stops it.
    """
    while True:
        time.sleep(every)
        ledger = ref()
        if ledger is None or shared.store._closed:
            return
        if ledger._counts()[0] > shared._sent and shared.store.available:
            shared.ask(ledger, ledger._now(), False)
        del ledger
