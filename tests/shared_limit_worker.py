"""One OS process sharing a rate limiter through Redis, driven line by line on stdin.

Run as ``python -m tests.shared_limit_worker PORT PREFIX NAME RATE BURST MAX_WAIT``
(``HARDY_NO_EXTENSIONS=1`` for the twin). Every command gets one JSON line back.
``run START WARM END MODE``: calls from wall-clock ``START`` to ``END`` as fast
as it can (``MODE`` ``try``: ``try_acquire()``; ``call``: a limited function,
waiting up to ``MAX_WAIT``), and counts the calls and the permits from
``WARM`` on (the steady state); anything but a permit or a
``RateLimitExceededError`` is reported as an error.
"""

from __future__ import annotations

import json
import sys
import time

import redis

import hardy


def main() -> None:
    port, prefix, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rate, burst, max_wait = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    store = hardy.RedisStore(redis.Redis(host="127.0.0.1", port=port), prefix=prefix)
    limiter = hardy.RateLimiter(name, rate, burst=burst, max_wait=max_wait, store=store)

    @limiter
    def work() -> None:
        return None

    reply({"ready": hardy.IMPLEMENTATION})
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "run":
            start, warm, end = float(args[0]), float(args[1]), float(args[2])
            call = limiter.try_acquire if args[3] == "try" else work
            while time.time() < start:
                time.sleep(0.001)
            calls = permits = rejected = 0
            errors: list[str] = []
            while True:
                now = time.time()
                if now >= end:
                    break
                try:
                    ok = call() is not False
                except hardy.RateLimitExceededError:
                    ok = False
                    rejected += 1
                except BaseException as exc:  # a Redis error that reached a call would show here
                    ok = False
                    errors.append(repr(exc))
                if now >= warm:
                    calls += 1
                    permits += ok
            reply({"calls": calls, "permits": permits, "rejected": rejected, "errors": errors[:5]})
        elif cmd == "mode":
            reply(limiter._share_mode())
        elif cmd == "quit":
            return


def reply(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
