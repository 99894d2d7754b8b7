-- record_step's behaviour: insert then update, attempts, event-time ordering, idempotent event ids,
-- the seed's hash, truncation. Test steps use negative task ids, which real tasks never have.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(52);

-- Hash vectors computed by Python's hashlib with the seed's formula:
--   hashlib.sha256(f"{task_id}:{step_number}:{step_type}:{target_file}".encode()).hexdigest()
SELECT is(public.jr_step_content_hash(7, 3, 'search_replace', '/ganuda/jr_executor/task_executor.py'),
    '6138d70c647a2198040ead4917a1516bd2ce8db778ee11abe10e92326d927eda', 'hash: the seed''s own step 3 edit');
SELECT is(public.jr_step_content_hash(7, 5, 'bash', NULL),
    '345e80bb81f36640d3ac866b67e1bb8012a4b4e200e192a5e8470ba33fbfb1e1', 'hash: a NULL target is spelled None');
SELECT is(public.jr_step_content_hash(-900001, 2, 'search_replace', '/srv/données/café_日本語.py'),
    'f29d2dd8a7a6511cef175d601ef3d4a1d731d4fd9ad12305c946cca37894d2a3', 'hash: a non-ASCII path is hashed as UTF-8');
SELECT is(public.jr_step_content_hash(2147483647, 0, 'bash', ''),
    'b7b3e98f7a4dcaf3425e5d485b1f7a18a62138e1af8e220d9c98cc5f6cf69f36', 'hash: an empty target and the integer limit');

-- A new step, then its outcome, then a retry.
SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'pending', NULL, recorded_at => '2020-01-01 09:00+00', executor => 'host-a:1'), 'recorded',
    'a new step is recorded');
SELECT results_eq(
    $$SELECT step_type::text, target_file::text, execution_result::text, attempts, step_content_hash::text
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 1$$,
    $$VALUES ('bash', NULL::text, 'pending', 0, '09529378cc40652332a2b3edaec315b8b00359454ee406888b28d58a557d0b4c')$$,
    'the pending marker is the step''s state, with the seed''s hash; it does not count as an attempt');

UPDATE public.jr_step_rewards SET updated_at = '2000-01-01' WHERE task_id = -900001 AND step_number = 1;
SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'failed', 1200, 'exit 1: boom', '2020-01-01 10:00+00', executor => 'host-a:1'), 'recorded',
    'the outcome is recorded');
SELECT results_eq(
    $$SELECT execution_result::text, execution_time_ms, error_detail, attempts, updated_at = now()::timestamp
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 1$$,
    $$VALUES ('failed', 1200, 'exit 1: boom', 1, true)$$,
    'an update overwrites result, time and error, counts the attempt and moves updated_at');

SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'success', 800, NULL, '2020-01-01 12:00+00',
        'a0000000-0000-4000-8000-000000000001', 'host-b:2'), 'recorded',
    'a retry''s success is recorded');
SELECT results_eq(
    $$SELECT execution_result::text, execution_time_ms, error_detail, attempts, last_event_at
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 1$$,
    $$VALUES ('success', 800, NULL::text, 2, '2020-01-01 12:00+00'::timestamptz)$$,
    'the success replaces the failure, clears the error and holds its event time');

-- Replays.
SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'success', 800, NULL, '2020-01-01 12:00+00',
        'a0000000-0000-4000-8000-000000000001', 'host-b:2'), 'duplicate',
    'the same event_id again is a duplicate, not an error');
SELECT is((SELECT attempts FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 1), 2,
    'a duplicate does not count an attempt');
SELECT is((SELECT count(*)::int FROM public.jr_step_attempts WHERE event_id = 'a0000000-0000-4000-8000-000000000001'), 1,
    'a duplicate leaves one history row');
SELECT throws_ok(
    $$SELECT public.record_step(-900001, 9, 'bash', NULL, 'success', 1, NULL, NULL, 'a0000000-0000-4000-8000-000000000001')$$,
    '23505', 'record_step: event_id a0000000-0000-4000-8000-000000000001 was already recorded for task -900001 step 1, not task -900001 step 9',
    'an event_id reused for another step is refused');

SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'failed', 5, 'late', '2020-01-01 11:00+00',
        'a0000000-0000-4000-8000-000000000002'), 'stale',
    'an event older than the current state is stale');
SELECT results_eq(
    $$SELECT execution_result::text, error_detail, attempts, last_event_at
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 1$$,
    $$VALUES ('success', NULL::text, 3, '2020-01-01 12:00+00'::timestamptz)$$,
    'a stale event does not overwrite newer state, but its attempt counts');
SELECT is(public.record_step(-900001, 1, 'bash', NULL, 'pending', NULL, NULL, '2020-01-01 12:00+00'), 'recorded',
    'an event at the same time as the current state overwrites it');

SELECT results_eq(
    $$SELECT attempt_number, execution_result::text, execution_time_ms, error_detail, recorded_at IS NOT NULL
      FROM public.jr_step_attempts WHERE task_id = -900001 AND step_number = 1 ORDER BY id$$,
    $$VALUES (1, 'pending', NULL::int, NULL::text, true), (1, 'failed', 1200, 'exit 1: boom', true),
             (2, 'success', 800, NULL, true), (3, 'failed', 5, 'late', true), (4, 'pending', NULL, NULL, true)$$,
    'history keeps every event once, failed attempts included, numbered by attempt');
SELECT results_eq(
    $$SELECT executor FROM public.jr_step_attempts WHERE task_id = -900001 AND step_number = 1 ORDER BY id LIMIT 3$$,
    $$VALUES ('host-a:1'), ('host-a:1'), ('host-b:2')$$,
    'history records the executor''s identity');
SELECT is((SELECT executor FROM public.jr_step_attempts WHERE event_id = 'a0000000-0000-4000-8000-000000000002'),
    session_user::text, 'without an identity, history records the database login');
SELECT is((SELECT recorded_at FROM public.jr_step_attempts WHERE event_id = 'a0000000-0000-4000-8000-000000000002'),
    '2020-01-01 11:00+00'::timestamptz, 'history keeps the event time given');
SELECT ok((SELECT bool_and(received_at = now()) FROM public.jr_step_attempts WHERE task_id = -900001),
    'history keeps when the ledger received each event');

-- Sequence values never roll back, and jr_step_rewards.id is the seed's 32-bit SERIAL: only an event
-- that inserts a row may take one. currval() is the last value this session drew, so writers in
-- other sessions (a production database) cannot move it under the test.
SELECT is(public.record_step(-900001, 5, 'bash', NULL, 'success', 1, NULL, '2020-01-01 12:00+00',
        'a0000000-0000-4000-8000-000000000005'), 'recorded', 'setup: a new step');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')),
    (SELECT id::bigint FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 5),
    'a new step takes a value of jr_step_rewards_id_seq: its id');
SELECT currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')) AS step_ids,
       currval(pg_get_serial_sequence('public.jr_step_attempts', 'id')) AS history_ids \gset
SELECT results_eq(
    $$SELECT public.record_step(-900001, 5, 'bash', NULL, 'success', 1, NULL, '2020-01-01 12:00+00',
             'a0000000-0000-4000-8000-000000000005') FROM generate_series(1, 5)$$,
    $$SELECT 'duplicate'::text FROM generate_series(1, 5)$$, '5 replays of the step''s event');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')), :step_ids::bigint,
    'replays take no value of jr_step_rewards_id_seq');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_attempts', 'id')), :history_ids::bigint,
    'nor of jr_step_attempts'' identity');
SELECT results_eq(
    $$SELECT public.record_step(-900001, 5, 'bash', NULL, 'failed', 1, 'late', '2020-01-01 11:00+00') FROM generate_series(1, 5)$$,
    $$SELECT 'stale'::text FROM generate_series(1, 5)$$, '5 stale events of the step');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')), :step_ids::bigint,
    'stale events take no value of jr_step_rewards_id_seq');
SELECT results_eq(
    $$SELECT public.record_step(-900001, 5, 'bash', NULL, 'success', 1) FROM generate_series(1, 5)$$,
    $$SELECT 'recorded'::text FROM generate_series(1, 5)$$, '5 newer events of the step');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')), :step_ids::bigint,
    'newer events of a step the ledger has take no value of jr_step_rewards_id_seq');
SELECT is(public.record_step(-900001, 6, 'bash', NULL, 'pending', NULL), 'recorded', 'another new step');
SELECT is(currval(pg_get_serial_sequence('public.jr_step_rewards', 'id')),
    (SELECT id::bigint FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 6),
    'it takes a value: its id');

-- A clock running fast cannot hold a step: a future event time counts as now.
SELECT is(public.record_step(-900001, 3, 'bash', NULL, 'success', 1, NULL, '2999-01-01'), 'recorded', 'setup: an event from the future');
SELECT ok((SELECT last_event_at <= clock_timestamp() FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 3),
    'an event time in the future is stored as now');
SELECT is(public.record_step(-900001, 3, 'bash', NULL, 'failed', 1, 'later'), 'recorded',
    'so a later event still updates the step');
SELECT is(public.record_step(-900001, 3, 'bash', NULL, 'success', 1, NULL, 'infinity'), 'recorded',
    'infinity counts as now too');
SELECT throws_ok($$SELECT public.record_step(-900001, 3, 'bash', NULL, 'success', 1, NULL, '-infinity')$$,
    '22008', 'record_step: recorded_at must be a finite time, got -infinity', '-infinity is refused: 22008');

-- A changed step definition rewrites type, target and hash.
SELECT is(public.record_step(-900001, 2, 'search_replace', '/srv/données/café_日本語.py', 'success', 3), 'recorded',
    'a step with a non-ASCII target is recorded');
SELECT is((SELECT step_content_hash::text FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 2),
    'f29d2dd8a7a6511cef175d601ef3d4a1d731d4fd9ad12305c946cca37894d2a3', 'the stored hash matches Python''s for a non-ASCII path');
SELECT is(public.record_step(-900001, 2, 'bash', NULL, 'failed', 3), 'recorded', 'the step''s definition changes');
SELECT results_eq(
    $$SELECT step_type::text, target_file::text, step_content_hash::text
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 2$$,
    $$VALUES ('bash', NULL::text, public.jr_step_content_hash(-900001, 2, 'bash', NULL))$$,
    'an update rewrites type, target and hash');

-- Long free text is kept, cut in the middle with a visible marker.
SELECT is(public.record_step(-900001, 4, 'search_replace', '/p/' || repeat('é', 600), 'failed', 1,
        repeat('H', 10000) || repeat('T', 10000)), 'recorded',
    'a 603-character path and a 20000-character error are accepted');
SELECT results_eq(
    $$SELECT length(target_file), left(target_file, 4), right(target_file, 3), target_file LIKE '%…[% characters cut]…%'
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 4$$,
    $$VALUES (500, '/p/é', 'ééé', true)$$,
    'a long path is cut to 500 characters, keeping head and tail around a marker');
SELECT is((SELECT target_file::text FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 4),
    public.jr_elide_middle('/p/' || repeat('é', 600), 500), 'the cut path is what jr_elide_middle gives');
SELECT is((SELECT step_content_hash::text FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 4),
    '27a29307a8140d9170df91f03c819a1d97a5e413e0f551622f2d2111bca8b81e', 'the hash uses the full, uncut path');
SELECT results_eq(
    $$SELECT length(error_detail) <= 16384, left(error_detail, 3), right(error_detail, 3), error_detail LIKE '%…[% characters cut]…%'
      FROM public.jr_step_rewards WHERE task_id = -900001 AND step_number = 4$$,
    $$VALUES (true, 'HHH', 'TTT', true)$$,
    'a long error is cut to at most 16384 characters, keeping head and tail');
SELECT is((SELECT error_detail FROM public.jr_step_attempts WHERE task_id = -900001 AND step_number = 4),
    public.jr_elide_middle(repeat('H', 10000) || repeat('T', 10000), 16384), 'history holds the same cut error');

SELECT is(public.jr_elide_middle('short', 10), 'short', 'jr_elide_middle: text that fits is unchanged');
SELECT is(public.jr_elide_middle(repeat('x', 500), 500), repeat('x', 500), 'jr_elide_middle: text exactly at the limit is unchanged');
SELECT is(public.jr_elide_middle(NULL, 10), NULL, 'jr_elide_middle: NULL stays NULL');
SELECT is(public.jr_elide_middle(repeat('a', 300) || repeat('b', 300), 100),
    repeat('a', 39) || '…[522 characters cut]…' || repeat('b', 39), 'jr_elide_middle: the marker counts exactly what was cut');

SELECT * FROM finish();
ROLLBACK;
