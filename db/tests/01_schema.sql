-- Structure: the seed's tables exactly, what the ledger adds, indexes, constraints and comments.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(28);

SELECT has_table('public', 'jr_step_rewards', 'jr_step_rewards exists');
SELECT has_table('public', 'jr_exploration_log', 'jr_exploration_log exists');
SELECT has_table('public', 'jr_step_attempts', 'jr_step_attempts exists');
SELECT has_table('public', 'jr_schema_migrations', 'the migration ledger exists');
SELECT has_table('public', 'jr_schema_definitions', 'the record of applied function and view files exists');

-- One row per column, in table order: name, type, default (SERIAL and IDENTITY by name), NOT NULL.
CREATE TEMP VIEW project_columns AS
SELECT c.relname::text COLLATE "default" AS table_name, a.attnum, a.attname::text COLLATE "default" AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type,
       CASE WHEN a.attidentity <> '' THEN 'identity'
            WHEN pg_get_serial_sequence(c.oid::regclass::text, a.attname) IS NOT NULL THEN 'serial'
            ELSE pg_get_expr(d.adbin, d.adrelid) COLLATE "default" END AS column_default,
       a.attnotnull AS not_null
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped;

SELECT results_eq(
    $$SELECT column_name, column_type, column_default, not_null FROM project_columns
      WHERE table_name = 'jr_step_rewards' ORDER BY attnum$$,
    $$VALUES
        ('id', 'integer', 'serial', true),
        ('task_id', 'integer', NULL, true),
        ('step_number', 'integer', NULL, true),
        ('step_type', 'character varying(30)', NULL, true),
        ('target_file', 'character varying(500)', NULL, false),
        ('step_content_hash', 'character varying(64)', NULL, false),
        ('execution_result', 'character varying(20)', '''pending''::character varying', false),
        ('implicit_reward', 'double precision', NULL, false),
        ('verified_outcome', 'character varying(20)', NULL, false),
        ('retry_decision', 'character varying(20)', NULL, false),
        ('execution_time_ms', 'integer', NULL, false),
        ('error_detail', 'text', NULL, false),
        ('created_at', 'timestamp without time zone', 'now()', false),
        ('updated_at', 'timestamp without time zone', 'now()', false),
        ('attempts', 'integer', '0', true),
        ('last_event_at', 'timestamp with time zone', 'now()', true),
        ('failed_attempts', 'integer', '0', true),
        ('step_definition_hash', 'character varying(64)', NULL, false)$$,
    'jr_step_rewards: the seed''s columns, types and defaults in the seed''s order, then attempts, last_event_at, failed_attempts and step_definition_hash');

SELECT results_eq(
    $$SELECT column_name, column_type, column_default, not_null FROM project_columns
      WHERE table_name = 'jr_exploration_log' ORDER BY attnum$$,
    $$VALUES
        ('id', 'integer', 'serial', true),
        ('jr_type', 'character varying(50)', NULL, true),
        ('task_type', 'character varying(100)', NULL, true),
        ('novelty_score', 'double precision', NULL, false),
        ('curiosity_bonus', 'double precision', NULL, false),
        ('task_outcome', 'character varying(20)', NULL, false),
        ('created_at', 'timestamp without time zone', 'now()', false)$$,
    'jr_exploration_log: exactly the seed''s columns, types and defaults');

SELECT results_eq(
    $$SELECT column_name, column_type, column_default, not_null FROM project_columns
      WHERE table_name = 'jr_step_attempts' ORDER BY attnum$$,
    $$VALUES
        ('id', 'bigint', 'identity', true),
        ('event_id', 'uuid', NULL, true),
        ('task_id', 'integer', NULL, true),
        ('step_number', 'integer', NULL, true),
        ('attempt_number', 'integer', NULL, true),
        ('step_type', 'character varying(30)', NULL, true),
        ('target_file', 'character varying(500)', NULL, false),
        ('step_content_hash', 'character varying(64)', NULL, false),
        ('execution_result', 'character varying(20)', NULL, true),
        ('execution_time_ms', 'integer', NULL, false),
        ('error_detail', 'text', NULL, false),
        ('executor', 'text', NULL, false),
        ('recorded_at', 'timestamp with time zone', NULL, true),
        ('received_at', 'timestamp with time zone', 'now()', true),
        ('step_definition_hash', 'character varying(64)', NULL, false),
        ('recorded_by', 'text', 'SESSION_USER', false)$$,
    'jr_step_attempts: task, step, attempt, type, target, hash, result, time, error, executor, event id, times, definition and the login');

SELECT has_pk('public', 'jr_step_rewards', 'jr_step_rewards has a primary key');
SELECT col_is_unique('public', 'jr_step_rewards', ARRAY['task_id', 'step_number'],
    'jr_step_rewards is UNIQUE(task_id, step_number), as in the seed');
SELECT col_is_unique('public', 'jr_step_attempts', ARRAY['event_id'],
    'jr_step_attempts.event_id is unique: the idempotency key');

SELECT indexes_are('public', 'jr_step_rewards',
    ARRAY['jr_step_rewards_pkey', 'jr_step_rewards_task_id_step_number_key',
          'idx_step_rewards_task', 'idx_step_rewards_type', 'idx_step_rewards_outcome'],
    'jr_step_rewards has the seed''s indexes and no others');
SELECT has_index('public', 'jr_step_rewards', 'idx_step_rewards_task', ARRAY['task_id'], 'idx_step_rewards_task is on task_id');
SELECT has_index('public', 'jr_step_rewards', 'idx_step_rewards_type', ARRAY['step_type'], 'idx_step_rewards_type is on step_type');
SELECT has_index('public', 'jr_step_rewards', 'idx_step_rewards_outcome', ARRAY['execution_result'],
    'idx_step_rewards_outcome is on execution_result');
SELECT has_index('public', 'jr_exploration_log', 'idx_exploration_jr', ARRAY['jr_type', 'created_at'],
    'idx_exploration_jr is on (jr_type, created_at)');
SELECT has_index('public', 'jr_step_attempts', 'idx_step_attempts_step', ARRAY['task_id', 'step_number'],
    'jr_step_attempts is indexed by step');
SELECT index_is_type('public', 'jr_step_attempts', 'idx_step_attempts_received_at', 'brin',
    'jr_step_attempts has a BRIN index on received_at, for retention');

SELECT bag_eq(
    $$SELECT conname::text COLLATE "default", convalidated FROM pg_constraint
      WHERE conrelid = 'public.jr_step_rewards'::regclass AND contype = 'c'$$,
    $$VALUES ('jr_step_rewards_attempts_nonnegative', true), ('jr_step_rewards_result_known', true),
             ('jr_step_rewards_step_number_nonnegative', true), ('jr_step_rewards_time_nonnegative', true),
             ('jr_step_rewards_failed_attempts_valid', true), ('jr_step_rewards_implicit_reward_finite', true),
             ('jr_step_rewards_verified_outcome_known', true), ('jr_step_rewards_retry_decision_known', true)$$,
    'jr_step_rewards has its CHECK constraints, all validated');
SELECT bag_eq(
    $$SELECT conname::text COLLATE "default", convalidated FROM pg_constraint
      WHERE conrelid = 'public.jr_exploration_log'::regclass AND contype = 'c'$$,
    $$VALUES ('jr_exploration_log_scores_finite', true), ('jr_exploration_log_task_outcome_known', true)$$,
    'jr_exploration_log has its CHECK constraints, all validated');
SELECT bag_eq(
    $$SELECT conname::text COLLATE "default" FROM pg_constraint
      WHERE conrelid = 'public.jr_step_attempts'::regclass AND contype = 'c'$$,
    $$VALUES ('jr_step_attempts_result_known'), ('jr_step_attempts_step_number_nonnegative'),
             ('jr_step_attempts_attempt_number_nonnegative'), ('jr_step_attempts_time_nonnegative')$$,
    'jr_step_attempts has its CHECK constraints');

-- The project's objects: its tables and views, and its functions (tests/test_ledger_sql.py checks
-- that every file in db/functions and db/views is named here).
CREATE TEMP VIEW project_relations AS
SELECT c.oid, c.relname::text COLLATE "default" AS name
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace
  AND c.relname IN ('jr_step_rewards', 'jr_exploration_log', 'jr_step_attempts', 'jr_schema_migrations',
                    'jr_schema_definitions', 'jr_step_definition_successes', 'jr_step_type_stats', 'jr_task_progress', 'jr_retry_effectiveness', 'jr_failure_hot_spots');
CREATE TEMP VIEW project_functions AS
SELECT p.oid
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace
  AND p.proname IN ('begin_step', 'record_step', 'step_succeeded', 'set_step_reward', 'record_exploration', 'prune_step_attempts',
                    'jr_step_content_hash', 'jr_elide_middle', 'jr_raise_row_violation');

SELECT is((SELECT count(*)::int FROM project_relations), 10, 'the project has 6 tables and 4 views');
SELECT is_empty(
    $$SELECT r.name || '.' || a.attname FROM project_relations r
      JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE col_description(r.oid, a.attnum) IS NULL$$,
    'every column of the project''s tables and views has a comment');
SELECT is_empty(
    $$SELECT name FROM project_relations WHERE obj_description(oid, 'pg_class') IS NULL$$,
    'every project table and view has a comment');
SELECT is((SELECT count(*)::int FROM project_functions), 9, 'the project has 9 functions');
SELECT is_empty(
    $$SELECT oid::regprocedure::text FROM project_functions WHERE obj_description(oid, 'pg_proc') IS NULL$$,
    'every project function has a comment');

SELECT results_eq(
    $$SELECT version, name FROM public.jr_schema_migrations ORDER BY version$$,
    $$VALUES (1, '0001_seed_schema.sql'), (2, '0002_step_attempts.sql'), (3, '0003_step_rewards_tracking.sql'),
             (4, '0004_rewards_and_exploration.sql'), (5, '0005_history_retention_index.sql'),
             (6, '0006_attempt_number_is_arrival_order.sql'), (7, '0007_step_definitions.sql'),
             (8, '0008_history_login.sql'), (9, '0009_schema_definitions.sql')$$,
    'the migration ledger lists every migration, starting from the seed''s baseline');
SELECT is_empty(
    $$SELECT name FROM public.jr_schema_migrations WHERE checksum !~ '^[0-9a-f]{64}$'$$,
    'every ledger row carries a SHA-256 checksum');

SELECT * FROM finish();
ROLLBACK;
