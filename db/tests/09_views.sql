-- The DBA views: their columns, who may read them, what they say about a known ledger, and plans
-- that never read the history. Safe on a production database: the test's steps have step types
-- and target files of their own, so real rows never mix into what is checked.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(27);

SELECT has_view('public', 'jr_step_type_stats', 'jr_step_type_stats exists');
SELECT has_view('public', 'jr_task_progress', 'jr_task_progress exists');
SELECT has_view('public', 'jr_retry_effectiveness', 'jr_retry_effectiveness exists');
SELECT has_view('public', 'jr_failure_hot_spots', 'jr_failure_hot_spots exists');
SELECT columns_are('public', 'jr_step_type_stats',
    ARRAY['step_type', 'steps', 'attempts', 'failed_attempts', 'success_rate', 'steps_succeeded', 'p50_ms', 'p95_ms',
          'last_seen'], 'jr_step_type_stats: steps, attempts, success rate, p50 and p95, last seen');
SELECT columns_are('public', 'jr_task_progress',
    ARRAY['task_id', 'steps', 'succeeded', 'failed', 'pending', 'attempts', 'steps_retried', 'total_ms', 'last_update'],
    'jr_task_progress: steps by result, attempts, steps retried, total time, last update');
SELECT columns_are('public', 'jr_retry_effectiveness',
    ARRAY['step_type', 'steps_failed', 'steps_fixed', 'fix_rate', 'attempts_to_fix'],
    'jr_retry_effectiveness: failed steps and how many a retry fixed');
SELECT columns_are('public', 'jr_failure_hot_spots',
    ARRAY['target_file', 'step_type', 'failed_attempts', 'steps_failed', 'still_failing', 'last_seen'],
    'jr_failure_hot_spots: failed attempts by target file and step type');

SELECT table_privs_are('public', v, 'jr_reader', ARRAY['SELECT'], 'jr_reader may only SELECT ' || v)
FROM unnest(ARRAY['jr_step_type_stats', 'jr_task_progress', 'jr_retry_effectiveness', 'jr_failure_hot_spots']) v;
SELECT table_privs_are('public', v, 'jr_executor', ARRAY[]::text[], 'jr_executor may not read ' || v)
FROM unnest(ARRAY['jr_step_type_stats', 'jr_task_progress', 'jr_retry_effectiveness', 'jr_failure_hot_spots']) v;
SELECT table_privs_are('public', v, 'public', ARRAY[]::text[], 'PUBLIC may not read ' || v)
FROM unnest(ARRAY['jr_step_type_stats', 'jr_task_progress', 'jr_retry_effectiveness', 'jr_failure_hot_spots']) v;

-- A known ledger: task -900601 has
--   step 1 pgtap_alpha: success in 100 ms
--   step 2 pgtap_alpha: failed, then success in 300 ms (fixed by a retry)
--   step 3 pgtap_beta on pgtap/hot.py: failed twice, last in 50 ms
--   step 4 pgtap_alpha: pending
SELECT public.record_step(-900601, 1, 'pgtap_alpha', NULL, 'success', 100);
SELECT public.record_step(-900601, 2, 'pgtap_alpha', NULL, 'failed', 20, 'boom');
SELECT public.record_step(-900601, 2, 'pgtap_alpha', NULL, 'success', 300);
SELECT public.record_step(-900601, 3, 'pgtap_beta', 'pgtap/hot.py', 'failed', 40, 'boom');
SELECT public.record_step(-900601, 3, 'pgtap_beta', 'pgtap/hot.py', 'failed', 50, 'boom again');
SELECT public.record_step(-900601, 4, 'pgtap_alpha', NULL, 'pending', NULL);

SELECT results_eq(
    $$SELECT steps, attempts, failed_attempts, success_rate, steps_succeeded, p50_ms, p95_ms, last_seen IS NOT NULL
      FROM public.jr_step_type_stats WHERE step_type = 'pgtap_alpha'$$,
    $$VALUES (3::bigint, 3::bigint, 1::bigint, 0.667, 2::bigint, 100, 300, true)$$,
    'jr_step_type_stats: 3 steps, 3 runs of which 1 failed, p50 and p95 of the latest runs');
SELECT results_eq(
    $$SELECT steps, succeeded, failed, pending, attempts, steps_retried, total_ms, last_update IS NOT NULL
      FROM public.jr_task_progress WHERE task_id = -900601$$,
    $$VALUES (4::bigint, 2::bigint, 1::bigint, 1::bigint, 5::bigint, 2::bigint, 450::bigint, true)$$,
    'jr_task_progress: 2 succeeded, 1 failed, 1 pending, 5 runs, 2 steps retried, 450 ms');
SELECT results_eq(
    $$SELECT step_type, steps_failed, steps_fixed, fix_rate, attempts_to_fix
      FROM public.jr_retry_effectiveness WHERE step_type IN ('pgtap_alpha', 'pgtap_beta') ORDER BY step_type$$,
    $$VALUES ('pgtap_alpha', 1::bigint, 1::bigint, 1.000, 2.00), ('pgtap_beta', 1::bigint, 0::bigint, 0.000, NULL)$$,
    'jr_retry_effectiveness: the alpha step a retry fixed, the beta step it did not');
SELECT results_eq(
    $$SELECT target_file, step_type, failed_attempts, steps_failed, still_failing
      FROM public.jr_failure_hot_spots WHERE step_type LIKE 'pgtap\_%'$$,
    $$VALUES ('pgtap/hot.py', 'pgtap_beta', 2::bigint, 1::bigint, 1::bigint),
             (NULL, 'pgtap_alpha', 1::bigint, 1::bigint, 0::bigint)$$,
    'jr_failure_hot_spots: the hot file first, by failed attempts');
SELECT is_empty($$SELECT FROM public.jr_retry_effectiveness WHERE step_type = 'pgtap_gamma'$$,
    'a step type that never failed has no retry row');

-- Plans: no view reads the history, and a task's progress is read through an index.
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN ' || query LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END
$$;
SELECT is_empty(
    $$SELECT v FROM unnest(ARRAY['jr_step_type_stats', 'jr_task_progress', 'jr_retry_effectiveness', 'jr_failure_hot_spots']) v
      WHERE pg_temp.plan_of('SELECT * FROM public.' || v) ~ 'jr_step_attempts'$$,
    'no view reads jr_step_attempts, so their cost follows the steps, not the history');
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of('SELECT * FROM public.jr_task_progress WHERE task_id = -900601'),
    '(Index Scan|Index Only Scan|Bitmap Index Scan) (using|on) (idx_step_rewards_task|jr_step_rewards_task_id_step_number_key)',
    'jr_task_progress WHERE task_id = … reaches the index on task_id');

SELECT * FROM finish();
ROLLBACK;
