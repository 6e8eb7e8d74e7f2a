"""Every Lua script that writes a job's record, each built from the shared fragments below.

A fragment is a Lua function that takes its keys and values as arguments, so each rule of the
record (how an event enters the stream, how the timeline grows, how a ledger takes its outcome,
how the vendor gate admits a call) is written once and every script that needs it calls it.
Scripts declare every key they touch (``KEYS``), except :data:`CLAIM`, which derives the vendor
account's rate and circuit keys from the job's receipt (the product runs on one Redis, not a
cluster).
"""

from __future__ import annotations

#: Append an event to the results stream.
EVENT_FN = """
local function add_event(stream, maxlen, event_id, job_id, status, event_json)
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'event_id', event_id, 'job_id', job_id, 'status', status, 'event', event_json)
end
"""

#: Append an entry to a job's timeline, keep the newest ``cap``, expire with the job.
TIMELINE_FN = """
local function push_timeline(key, entry, cap, ttl)
  redis.call('RPUSH', key, entry)
  redis.call('LTRIM', key, -tonumber(cap), -1)
  redis.call('EXPIRE', key, tonumber(ttl))
end
"""

#: Write the outcome of an attempt (or an operator's decision) into the ledger.
OUTCOME_FN = """
local function set_outcome(ledger, state, event_id, status, ttl)
  redis.call('HSET', ledger, 'state', state, 'last_event', event_id, 'last_status', status)
  redis.call('EXPIRE', ledger, tonumber(ttl))
end
"""

#: Shorten a key's life to ``seconds`` unless it already ends sooner (0: leave it).
SHORTEN_FN = """
local function shorten(key, seconds)
  seconds = tonumber(seconds)
  if seconds <= 0 then return end
  local left = redis.call('TTL', key)
  if left == -1 or left > seconds then redis.call('EXPIRE', key, seconds) end
end
"""

#: Push a wake token onto a queue's wake list for an idle worker, unless it holds ``most``.
WAKE_FN = """
local function wake(list, most)
  if redis.call('LLEN', list) < tonumber(most) then redis.call('LPUSH', list, '1') end
end
"""

#: Mark an attempt in flight: the ledger holds the attempt, the worker, Redis's time and the
#: delivery's token (so the same delivery, asking again after a lost reply, knows the mark).
MARK_FN = """
local function mark_in_flight(ledger, attempt, worker, ttl, token)
  local t = redis.call('TIME')
  redis.call('HSET', ledger, 'state', 'in_flight', 'attempt', attempt, 'worker', worker,
    'started_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])), 'token', token)
  redis.call('EXPIRE', ledger, tonumber(ttl))
end
"""

#: The vendor gate: GCRA rate limit and circuit breaker of one vendor account.
#: ``admit`` returns {verdict, wait s (string), circuit state, consecutive failures}; verdict is
#: 'ok', 'probe' (half open: this caller is the probe), 'circuit' or 'rate'. ``now`` '' is
#: Redis's clock. ``report`` returns the transition: 'opened', 'reopened', 'closed' or ''.
GATE_FN = """
local function clock(now)
  now = tonumber(now)
  if not now then local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
  return now
end
local function admit(rate_key, circuit_key, now, interval, tolerance, probe_lease, probe_wait)
  now = clock(now)
  local c = redis.call('HMGET', circuit_key, 'state', 'open_until', 'probe_until', 'failures')
  local state = c[1] or 'closed'
  local failures = tonumber(c[4] or '0')
  local verdict = 'ok'
  if state ~= 'closed' then
    local open_until = tonumber(c[2] or '0')
    if now < open_until then return {'circuit', tostring(open_until - now), state, failures} end
    local probe_until = tonumber(c[3] or '0')
    if now < probe_until then
      -- Another call is probing: look again soon (its answer closes or reopens the circuit).
      local wait = math.min(probe_until - now, tonumber(probe_wait))
      return {'circuit', tostring(wait), state, failures}
    end
    redis.call('HSET', circuit_key, 'state', 'half_open',
      'probe_until', now + tonumber(probe_lease))
    state = 'half_open'
    verdict = 'probe'
  end
  interval = tonumber(interval)
  local tat = tonumber(redis.call('GET', rate_key) or '0')
  local allow_at = tat - tonumber(tolerance)
  if now < allow_at then
    if verdict == 'probe' then redis.call('HSET', circuit_key, 'probe_until', 0) end
    return {'rate', tostring(allow_at - now), state, failures}
  end
  if interval > 0 then
    if tat < now then tat = now end
    local new_tat = tat + interval
    redis.call('SET', rate_key, tostring(new_tat), 'PX', math.ceil((new_tat - now + 60) * 1000))
  end
  return {verdict, '0', state, failures}
end
local function report(circuit_key, now, success, threshold, open_s, max_open_s)
  now = clock(now)
  local state = redis.call('HGET', circuit_key, 'state') or 'closed'
  if success == '1' then
    if state ~= 'closed' then
      redis.call('DEL', circuit_key)
      return 'closed'
    end
    redis.call('HDEL', circuit_key, 'failures')
    return ''
  end
  local failures = redis.call('HINCRBY', circuit_key, 'failures', 1)
  redis.call('EXPIRE', circuit_key, 86400)
  if state == 'half_open' then
    local open_for = tonumber(redis.call('HGET', circuit_key, 'open_for') or open_s) * 2
    if open_for > tonumber(max_open_s) then open_for = tonumber(max_open_s) end
    redis.call('HSET', circuit_key, 'state', 'open', 'open_until', now + open_for,
      'open_for', open_for, 'probe_until', 0)
    return 'reopened'
  end
  if state == 'closed' and failures >= tonumber(threshold) then
    redis.call('HSET', circuit_key, 'state', 'open', 'open_until', now + tonumber(open_s),
      'open_for', open_s, 'opened_at', now)
    return 'opened'
  end
  return ''
end
local function pause(rate_key, now, seconds, tolerance)
  now = clock(now)
  local want = now + tonumber(seconds) + tonumber(tolerance)
  local tat = tonumber(redis.call('GET', rate_key) or '0')
  if want > tat then
    redis.call('SET', rate_key, tostring(want), 'PX', math.ceil((want - now + 60) * 1000))
  end
end
"""

# KEYS: rate key, circuit hash. ARGV: now, interval s (0 = no limit), burst tolerance s, probe
# lease s, how long to wait while another call probes.
GATE_ADMIT = GATE_FN + "return admit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"

# KEYS: circuit hash. ARGV: now, success (1/0), threshold, open s, max open s.
GATE_REPORT = GATE_FN + "return report(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])"

# KEYS: rate key. ARGV: now, seconds, burst tolerance s. Nobody is admitted before now + seconds.
GATE_PAUSE = GATE_FN + "pause(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) return 1"

#: Enqueue. If the job id is known, return its first receipt; else record receipt, run 1 and
#: the job document, and push the task message (ids only) onto ``queue`` (nil when the broker
#: is not this Redis: the job is then marked unpublished until its message is confirmed) and a
#: token onto ``wake_list`` for an idle worker, unless it holds ``wake_max`` already.
#: ``not_before`` is epoch seconds (0 for none). Returns {created, receipt, published}.
ENQUEUE_FN = WAKE_FN + """
local function enqueue(job_key, doc_key, queue, wake_list, receipt, doc, message, ttl, run_id,
                       not_before, wake_max)
  local first = redis.call('HMGET', job_key, 'receipt', 'published')
  if first[1] then return {0, first[1], first[2] or '1'} end
  redis.call('HSET', job_key, 'receipt', receipt, 'run', 1, 'run_id', run_id,
    'not_before', not_before)
  redis.call('EXPIRE', job_key, tonumber(ttl))
  redis.call('SET', doc_key, doc, 'EX', tonumber(ttl))
  if queue then
    redis.call('LPUSH', queue, message)
    if wake_list then wake(wake_list, wake_max) end
    return {1, receipt, '1'}
  end
  redis.call('HSET', job_key, 'published', '0')
  return {1, receipt, '0'}
end
"""

# KEYS: job hash, job document, then the queue list and the wake list (both absent when the
# broker is not this Redis). ARGV: receipt, job, message, ttl seconds, run id, not_before, the
# most wake tokens kept.
ENQUEUE = (
    ENQUEUE_FN
    + "return enqueue(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], "
    "ARGV[5], ARGV[6], ARGV[7])"
)

# The first round trip of an attempt: load the job and its ledger and, when the ledger says
# this attempt simply runs now, ask the vendor gate and mark the attempt in flight.
# KEYS: job hash, job document, ledger, terminal marker of run ARGV[1].
# ARGV: 1 run, 2 attempt, 3 worker, 4 ttl s, 5 the delivery's token, 6 JSON object
# "vendor:account" -> [interval s, tolerance s] of the accounts whose limit the caller knows,
# 7 and 8 the rate and circuit key names with {vendor} and {account} in them, 9 probe lease s,
# 10 how long to wait while another call probes.
# Returns {claimed, ledger fields, terminal event id, time s, time us, current run, run id,
# document, gate verdict, gate wait, circuit state, failures}: claimed is 1 when this call
# marked the attempt, 2 when the mark was already this delivery's (a retry after a lost reply),
# 0 when it did neither (the caller decides from what was read); the gate fields are '' when
# the gate was not asked.
CLAIM = (
    GATE_FN
    + MARK_FN
    + """
local job = redis.call('HMGET', KEYS[1], 'run', 'run_id', 'receipt', 'job', 'not_before')
local doc = redis.call('GET', KEYS[2])
if not doc then doc = job[4] end
local ledger = redis.call('HGETALL', KEYS[3])
local terminal = redis.call('GET', KEYS[4])
local t = redis.call('TIME')
local function out(claimed, gate)
  gate = gate or {'', '', '', 0}
  return {claimed, ledger, terminal, t[1], t[2], job[1], job[2], doc,
    gate[1], gate[2], gate[3], gate[4]}
end
local f = {}
for i = 1, #ledger, 2 do f[ledger[i]] = ledger[i + 1] end
if f.state == 'in_flight' and f.token == ARGV[5] then return out(2) end
local attempt = tonumber(ARGV[2])
local last = tonumber(f.attempt or '0')
-- Only the plain case is claimed here: the run is current and open, nothing is in flight, no
-- later attempt ran nor did this one already end (worker.policy.plan: RUN this attempt), and
-- the job is due (a job that waits for its not_before, or whose hash predates the field, is
-- only loaded: the gate is not asked for a call that will not go out).
if not job[5] or tonumber(job[5]) > tonumber(t[1]) + tonumber(t[2]) / 1e6 then return out(0) end
if not doc or terminal or tonumber(job[1] or '1') ~= tonumber(ARGV[1]) or not job[3]
    or f.state == 'in_flight' or last > attempt or (last == attempt and f.state == 'waiting') then
  return out(0)
end
local ok, receipt = pcall(cjson.decode, job[3])
if not ok or type(receipt) ~= 'table' or type(receipt.vendor) ~= 'string' then return out(0) end
local account = receipt.account
if type(account) ~= 'string' then account = 'default' end
local limit = cjson.decode(ARGV[6])[receipt.vendor .. ':' .. account]
if type(limit) ~= 'table' then return out(0) end
local function key(template)
  local name = string.gsub(template, '{vendor}', function() return receipt.vendor end)
  return (string.gsub(name, '{account}', function() return account end))
end
local gate = admit(key(ARGV[7]), key(ARGV[8]), '', limit[1], limit[2], ARGV[9], ARGV[10])
if gate[1] ~= 'ok' and gate[1] ~= 'probe' then return out(0, gate) end
mark_in_flight(KEYS[3], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return out(1, gate)
"""
)

# Start an attempt unless another delivery holds the job: KEYS: ledger. ARGV: attempt, worker,
# ttl s, the started_at of a stale attempt being taken over ('' for none), the delivery's
# token. Returns 1 (marked), 2 (already this delivery's mark: a retry after a lost reply) or 0.
BEGIN = (
    MARK_FN
    + """
local held = redis.call('HMGET', KEYS[1], 'state', 'started_at', 'token')
if held[1] == 'in_flight' then
  if held[3] == ARGV[5] then return 2 end
  if held[2] ~= ARGV[4] then return 0 end
end
mark_in_flight(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5])
return 1
"""
)

#: Give back the half-open circuit's probe a call took but did not make (so another call
#: probes at once, not after the probe's lease).
UNPROBE_FN = """
local function unprobe(circuit_key)
  if redis.call('HGET', circuit_key, 'state') == 'half_open' then
    redis.call('HSET', circuit_key, 'probe_until', 0)
  end
end
"""

# Give back this delivery's in-flight mark without an outcome (the job waits instead).
# KEYS: ledger, circuit hash. ARGV: the delivery's token, the state to leave, '1' to give back
# the circuit's probe. Returns 1 if it was the mark.
RELEASE = (
    UNPROBE_FN
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'in_flight'
    or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
if ARGV[3] == '1' then unprobe(KEYS[2]) end
return 1
"""
)

# Record an attempt's event: result event, ledger state, dead letters, timeline, and what the
# vendor call taught the gate. Exactly one terminal event per run: the terminal event is
# written only if none exists yet. An event of a run that a replay superseded, or a second
# terminal event of a run, is not written; its timeline entry is, marked "recorded": false.
# KEYS: 1 terminal marker, 2 results stream, 3 ledger, 4 dead letters, 5 job hash,
#       6 timeline, 7 dead-letter events, 8 job document, 9 rate key, 10 circuit hash
# ARGV: 1 event id, 2 event json, 3 stream maxlen, 4 is terminal (1/0), 5 ledger state,
#       6 ttl s, 7 job id, 8 status, 9 the job's ids for the dead letters ('' for none),
#       10 timeline entry json, 11 timeline cap, 12 the event's run, 13 how long the document
#       outlives its run's end (s; 0: kept, the job stays open), 14 the stream's oldest age
#       kept (s), 15 circuit report ('' none, '1' success, '0' failure), 16 threshold,
#       17 open s, 18 max open s, 19 pause s ('' none), 20 burst tolerance s, 21 '1' to give
#       back the circuit's probe (the attempt took it and made no call)
# Returns {written, stream id or why not, circuit transition}.
RECORD = (
    EVENT_FN
    + TIMELINE_FN
    + OUTCOME_FN
    + SHORTEN_FN
    + GATE_FN
    + UNPROBE_FN
    + """
local transition = ''
if ARGV[21] == '1' then unprobe(KEYS[10]) end
if ARGV[15] ~= '' then
  transition = report(KEYS[10], '', ARGV[15], ARGV[16], ARGV[17], ARGV[18])
end
if ARGV[19] ~= '' then pause(KEYS[9], '', ARGV[19], ARGV[20]) end
local function unrecorded()
  push_timeline(KEYS[6], (string.gsub(ARGV[10], '"recorded":true', '"recorded":false', 1)),
    ARGV[11], ARGV[6])
end
local current = redis.call('HGET', KEYS[5], 'run')
if current and tonumber(current) > tonumber(ARGV[12]) then
  unrecorded()
  return {0, 'superseded by run ' .. current, transition}
end
if ARGV[4] == '1' then
  local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[6]))
  if not ok then
    unrecorded()
    return {0, redis.call('GET', KEYS[1]), transition}
  end
end
local id = add_event(KEYS[2], ARGV[3], ARGV[1], ARGV[7], ARGV[8], ARGV[2])
local now = redis.call('TIME')
redis.call('XTRIM', KEYS[2], 'MINID', '~', (tonumber(now[1]) - tonumber(ARGV[14])) * 1000)
if ARGV[4] == '1' then shorten(KEYS[8], ARGV[13]) end
set_outcome(KEYS[3], ARGV[5], ARGV[1], ARGV[8], ARGV[6])
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[7], ARGV[9])
  redis.call('HSET', KEYS[7], ARGV[7], ARGV[2])
end
push_timeline(KEYS[6], ARGV[10], ARGV[11], ARGV[6])
return {1, id, transition}
"""
)

# Shared head of every operator action. KEYS[1] job hash, KEYS[2] run N's terminal marker,
# KEYS[3] ledger, KEYS[4] dead letters, KEYS[5] dead-letter events, KEYS[6] results stream,
# KEYS[7] timeline. ARGV[1] run N, ARGV[2] job id. Refuses unless run N is the current run and
# it ended (its terminal marker, or the job waits in the dead letters).
_RUN_ENDED = """
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or ARGV[1])
if run ~= tonumber(ARGV[1]) then return {0, 'run', tostring(run)} end
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HEXISTS', KEYS[4], ARGV[2]) == 0 then
  return {0, 'running', tostring(run)}
end
"""

# The head of replay and resolve: ARGV[3] new run token, ARGV[4] ttl s, ARGV[5] event id,
# ARGV[6] event json, ARGV[7] status, ARGV[8] stream maxlen, ARGV[9] timeline entry,
# ARGV[10] timeline cap.
_ACTION_HEAD = (
    EVENT_FN
    + TIMELINE_FN
    + OUTCOME_FN
    + SHORTEN_FN
    + _RUN_ENDED
    + """
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'run', run + 1, 'run_id', ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('DEL', KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[2])
local id = add_event(KEYS[6], ARGV[8], ARGV[5], ARGV[2], ARGV[7], ARGV[6])
push_timeline(KEYS[7], ARGV[9], ARGV[10], ttl)
"""
)

# Replay. KEYS[8] the vendor queue (list), KEYS[9] the job document, KEYS[10] the queue's wake
# list. ARGV[11] job json, ARGV[12] receipt json (kept if the job store has one), ARGV[13] task
# message for attempt 1 of run N+1, ARGV[14] the job's not_before (epoch s, 0 for none),
# ARGV[15] the most wake tokens kept. The job is open again: its document is kept as long as
# its receipt.
REPLAY = (
    _ACTION_HEAD
    + WAKE_FN
    + """
redis.call('SET', KEYS[9], ARGV[11], 'EX', ttl)
redis.call('HDEL', KEYS[1], 'job')
redis.call('HSETNX', KEYS[1], 'receipt', ARGV[12])
redis.call('HSET', KEYS[1], 'not_before', ARGV[14])
redis.call('LPUSH', KEYS[8], ARGV[13])
wake(KEYS[10], ARGV[15])
return {1, id}
"""
)

# Resolve. KEYS[8] run N+1's terminal marker, KEYS[9] the job document. ARGV[11] how long the
# document outlives the decision. The decision is run N+1's terminal event.
RESOLVE = (
    _ACTION_HEAD
    + """
redis.call('SET', KEYS[8], ARGV[5], 'EX', ttl)
shorten(KEYS[9], ARGV[11])
set_outcome(KEYS[3], 'done', ARGV[5], ARGV[7], ttl)
return {1, id}
"""
)

# Purge, after the head's check. KEYS[8] the job document. ARGV[3] the timeline's length as
# read, ARGV[4] its last entry as read, ARGV[5] the purged dead-letter event ('' for none),
# ARGV[6] event id, ARGV[7] event json, ARGV[8] stream maxlen, ARGV[9] timeline cap, ARGV[10]
# ttl s, ARGV[11] the purge's timeline entry, ARGV[12] n, ARGV[13 .. 12+n] the purged timeline,
# then the stream entries to delete. Refuses unless the timeline is as read.
PURGE = (
    EVENT_FN
    + _RUN_ENDED
    + """
if redis.call('LLEN', KEYS[7]) ~= tonumber(ARGV[3])
    or (redis.call('LINDEX', KEYS[7], -1) or '') ~= ARGV[4] then
  return {0, 'timeline', tostring(run)}
end
redis.call('DEL', KEYS[8])
redis.call('HDEL', KEYS[1], 'job')
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[5], ARGV[2], ARGV[5])
end
local left = redis.call('PTTL', KEYS[7])
redis.call('DEL', KEYS[7])
local n = tonumber(ARGV[12])
for i = 13, 12 + n do redis.call('RPUSH', KEYS[7], ARGV[i]) end
redis.call('RPUSH', KEYS[7], ARGV[11])
redis.call('LTRIM', KEYS[7], -tonumber(ARGV[9]), -1)
if left > 0 then
  redis.call('PEXPIRE', KEYS[7], left)
else
  redis.call('EXPIRE', KEYS[7], tonumber(ARGV[10]))
end
for i = 13 + n, #ARGV do redis.call('XDEL', KEYS[6], ARGV[i]) end
local id = add_event(KEYS[6], ARGV[8], ARGV[6], ARGV[2], 'purged', ARGV[7])
return {1, id}
"""
)
