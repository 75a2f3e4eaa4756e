"""One OS process sharing a breaker through Redis, driven line by line on stdin.

Run as ``python -m tests.shared_worker PORT PREFIX NAME THRESHOLD RESET MAX``
(``HARDY_NO_EXTENSIONS=1`` for the twin). Every command gets one JSON line
back; an outcome is ``ok``, ``failed`` (the call's own error), ``rejected``
(``CircuitOpenError``) or ``error: ...`` (anything else: a Redis error that
reached the call would show here).
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable

import redis

import hardy


def main() -> None:
    port, prefix, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    threshold, reset, max_calls = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    store = hardy.RedisStore(redis.Redis(host="127.0.0.1", port=port), prefix=prefix, sync_interval=0.1)
    breaker = hardy.CircuitBreaker(
        name, failure_threshold=threshold, reset_timeout=reset, half_open_max_calls=max_calls, store=store
    )

    def call(func: Callable[[], object]) -> str:
        try:
            breaker.call(func)
        except ValueError:
            return "failed"
        except hardy.CircuitOpenError:
            return "rejected"
        except BaseException as exc:
            return f"error: {exc!r}"
        return "ok"

    def boom() -> None:
        raise ValueError("dependency down")

    reply({"ready": hardy.IMPLEMENTATION})
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "fail":
            reply(call(boom))
        elif cmd == "ok":
            reply(call(lambda: None))
        elif cmd == "slow":
            reply(call(functools.partial(time.sleep, float(args[0]))))
        elif cmd == "state":
            reply(breaker.state.value)
        elif cmd == "wait_state":
            deadline = time.monotonic() + float(args[1])
            while breaker.state.value != args[0] and time.monotonic() < deadline:
                time.sleep(0.005)
            reply(breaker.state.value)
        elif cmd == "loop":
            # Calls for args[0] seconds; every args[1]-th fails.
            outcomes: Counter[str] = Counter()
            end = time.monotonic() + float(args[0])
            every = int(args[1])
            i = 0
            while time.monotonic() < end:
                i += 1
                outcomes[call(boom if i % every == 0 else lambda: None)] += 1
                time.sleep(0.001)
            reply(dict(outcomes))
        elif cmd == "quit":
            return


def reply(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
