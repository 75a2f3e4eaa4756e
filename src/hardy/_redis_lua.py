"""The one Lua script behind :class:`hardy.RedisStore`.

Every change to a shared breaker runs inside this script, so it is atomic in
Redis, and every time in it comes from the server's ``TIME``: no host's clock
decides when a circuit may close. The script is loaded once and run by SHA.

Keys (both carry the hash tag ``{name}``, so they share a Cluster slot):

* ``KEYS[1]``: a hash with ``inc`` (the incarnation: set when the hash is
  created, so a client notices keys that expired or a Redis that lost its
  data), ``ver`` (grows with every write), ``state`` (0 closed, 1 open; half-open
  is open with the reset timeout passed), ``gen`` (grows when the circuit
  opens or is reset: outcomes of older generations move nothing), ``fseq``
  and ``fbase`` (failures ever, and the failures a success has cleared: the
  consecutive count is their difference), ``opened`` (server ms),
  ``tsucc`` (trial successes), ``boff`` (half-open periods that failed
  since it last closed: each caller's circuit stays open its own
  ``reset_timeout`` times its ``reset_backoff`` to that power, at most its
  ``max_reset_timeout``), and ``tfail`` and ``tslow`` (the failed and slow
  trials of the half-open period of generation ``tgen``, where trials are
  judged by rate).
* ``KEYS[2]``: a sorted set of the outstanding trial permits, scored by the
  server time at which their lease ends, so a process that dies holding one
  cannot keep the circuit half-open.

Either key holding another type of value makes the script answer
``WRONGTYPE ...`` without writing anything: the store then runs that breaker
locally until the key is deleted.

``ARGV``: op, channel, name, failure_threshold, reset_timeout (ms),
half_open_max_calls, key expiry (ms), the caller's generation, the op's
argument (a permit id, or the failure sequence a success has seen), the
lease (ms), and the breaker's reset_backoff, max_reset_timeout (ms),
success_threshold, and the failure and slow-call rates that judge its trials
(an older client sends none of the last five: no backoff, and
half_open_max_calls successes close). A failure rate of 0 counts the trials:
any failed one re-opens the circuit, success_threshold successes close it.
Otherwise, as hardy.policies.breaker judges them: a failed trial keeps its
slot, the circuit re-opens once the failed trials (or the slow ones, with a
slow-call rate) reach that rate of half_open_max_calls, and closes once every
trial has an outcome below both. The ops ``ok_slow`` and ``fail_slow`` are
``ok`` and ``fail`` for a slow call. The reply, and the message published
when the state changes, is the snapshot ``inc, ver, state, gen, fseq -
fbase, open elapsed (µs), permits issued, trial successes, granted, fseq,
boff, tfail, tslow``.
"""

from __future__ import annotations

SCRIPT = """
local h, p = KEYS[1], KEYS[2]
local op, channel, name = ARGV[1], ARGV[2], ARGV[3]
local threshold, reset_ms, max_calls, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local caller_gen, arg, lease = tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local backoff, max_wait = tonumber(ARGV[11]) or 1, tonumber(ARGV[12]) or reset_ms
local close_at = tonumber(ARGV[13]) or max_calls
local trial_rate, slow_rate = tonumber(ARGV[14]) or 0, tonumber(ARGV[15]) or 0
local slow_op = op == 'ok_slow' or op == 'fail_slow'
if slow_op then
  op = string.sub(op, 1, -6)
end

-- A key that holds something else is not ours to overwrite: say so and touch nothing.
for _, check in ipairs({{h, 'hash'}, {p, 'zset'}}) do
  local kind = redis.call('TYPE', check[1])['ok']
  if kind ~= 'none' and kind ~= check[2] then
    return redis.error_reply('WRONGTYPE ' .. check[1] .. ' holds a ' .. kind .. ', not a hardy circuit ' .. check[2])
  end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local f = redis.call('HMGET', h, 'inc', 'ver', 'state', 'gen', 'fseq', 'fbase', 'opened', 'tsucc', 'boff',
                     'tgen', 'tfail', 'tslow')
local inc = f[1] or ''
local ver = tonumber(f[2]) or 0
local state = tonumber(f[3]) or 0
if state ~= 1 then
  state = 0  -- anything but "open" is closed: a damaged field must not hold a circuit open
end
local gen = tonumber(f[4]) or 0
local fseq = tonumber(f[5]) or 0
local fbase = tonumber(f[6]) or 0
local opened = tonumber(f[7]) or 0
local tsucc = tonumber(f[8]) or 0
local boff = tonumber(f[9]) or 0
-- The trial tally counts only in the period it was kept for (an older
-- script leaves it as it was).
local tfail, tslow = 0, 0
if tonumber(f[10]) == gen then
  tfail, tslow = tonumber(f[11]) or 0, tonumber(f[12]) or 0
end
local function open_ms()
  return math.min(reset_ms * backoff ^ boff, max_wait)
end
local half = state == 1 and now - opened >= open_ms()
local dirty, changed, granted = false, false, 0

local function open_circuit()
  if half then
    boff = boff + 1  -- a failed half-open period: longer next time
  else
    boff = 0
  end
  state, gen, opened, tsucc, tfail, tslow = 1, gen + 1, now, 0, 0, 0
  half = false
  redis.call('DEL', p)
  changed = true
end

local function close_circuit()
  state, fbase, tsucc, tfail, tslow, boff = 0, fseq, 0, 0, 0, 0
  half = false
  redis.call('DEL', p)
  changed = true
end

-- A trial's outcome where trials are judged by rate.
local function judge_trials()
  if tfail / max_calls >= trial_rate or (slow_rate > 0 and tslow / max_calls >= slow_rate) then
    open_circuit()
  elseif tsucc + tfail >= max_calls then
    close_circuit()
  end
end

if half then
  redis.call('ZREMRANGEBYSCORE', p, '-inf', now)
end
local current = caller_gen == gen

if op == 'acquire' then
  if half and redis.call('ZCARD', p) + tsucc + tfail < max_calls then
    redis.call('ZADD', p, now + lease, arg)
    redis.call('PEXPIRE', p, ttl)
    granted = 1
    dirty = true
  end
elseif op == 'fail' then
  if current and state == 0 then
    fseq = fseq + 1
    dirty = true
    if fseq - fbase >= threshold then
      open_circuit()
    end
  elseif current and half and trial_rate > 0 then
    redis.call('ZREM', p, arg)
    tfail = tfail + 1
    if slow_op then
      tslow = tslow + 1
    end
    dirty = true
    judge_trials()
  elseif current and half then
    open_circuit()
  end
elseif op == 'ok' then
  if current and half then
    redis.call('ZREM', p, arg)
    tsucc = tsucc + 1
    dirty = true
    if trial_rate > 0 then
      if slow_op then
        tslow = tslow + 1
      end
      judge_trials()
    elseif tsucc >= close_at then
      close_circuit()
    end
  end
elseif op == 'release' then
  if current and half then
    redis.call('ZREM', p, arg)
  end
elseif op == 'clear' then
  local seen = tonumber(arg)
  if current and state == 0 and seen > fbase then
    fbase = math.min(seen, fseq)
    dirty = true
  end
elseif op == 'reset' then
  gen = gen + 1
  close_circuit()
end

if dirty or changed then
  if inc == '' then
    inc = t[1] .. '.' .. t[2]
  end
  ver = ver + 1
  redis.call('HSET', h, 'inc', inc, 'ver', ver, 'state', state, 'gen', gen, 'fseq', fseq,
             'fbase', fbase, 'opened', tostring(opened), 'tsucc', tsucc, 'boff', boff,
             'tgen', gen, 'tfail', tfail, 'tslow', tslow)
  redis.call('PEXPIRE', h, math.floor(ttl + open_ms() - reset_ms))  -- kept while a backed-off circuit is open
end

local issued = 0
if half then
  issued = redis.call('ZCARD', p) + tsucc + tfail
end
local elapsed = 0
if state == 1 then
  elapsed = math.floor((now - opened) * 1000)
end
local snapshot = {inc, ver, state, gen, fseq - fbase, elapsed, issued, tsucc, granted, fseq, boff, tfail, tslow}
if changed then
  local message = {name, inc, ver, state, gen, fseq - fbase, elapsed, issued, tsucc, 0, fseq, boff, tfail, tslow}
  redis.call('PUBLISH', channel, cjson.encode(message))
end
return snapshot
"""

LEASE_SCRIPT = """
local key, procs = KEYS[1], KEYS[2]
local interval, tolerance, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local token, window = ARGV[4], tonumber(ARGV[5])

for _, check in ipairs({{key, 'string'}, {procs, 'zset'}}) do
  local kind = redis.call('TYPE', check[1])['ok']
  if kind ~= 'none' and kind ~= check[2] then
    return redis.error_reply('WRONGTYPE ' .. check[1] .. ' holds a ' .. kind .. ', not a hardy rate limit ' .. check[2])
  end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Absent (expired) or damaged: a quiet limit, its whole burst free.
local tat = tonumber(redis.call('GET', key)) or now
if tat < now then
  tat = now
end
tat = tat + want * interval
local delay = tat - tolerance - now
if delay < 0 then
  delay = 0
end
-- Once tat has passed the key says nothing an absent key would not.
redis.call('SET', key, string.format('%.17g', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
local now_ms = now / 1000
redis.call('ZADD', procs, now_ms, token)
redis.call('ZREMRANGEBYSCORE', procs, '-inf', now_ms - window)
redis.call('PEXPIRE', procs, window)
return {want, string.format('%.17g', delay), redis.call('ZCARD', procs)}
"""
"""The lease of a shared rate limiter: GCRA over the server's ``TIME``, in µs.

``KEYS[1]`` (a string) is the limit's theoretical arrival time; ``KEYS[2]``
(a sorted set) the processes that took a lease within the window, scored by
when (ms), so each one knows its share of the rate should Redis go away.
``ARGV``: interval (µs), burst tolerance (µs), permits wanted, the process's
token, the window (ms). Every lease is granted, reserved in the order asked:
the reply ``{granted, delay (µs), processes}`` says when its permits may be
spent (``0``: at once; later when other processes reserved first). Both keys
carry the hash tag ``{name}``.
"""
