-- step_succeeded: the retry check, in every state a step can be in.
BEGIN;
SET LOCAL client_min_messages = warning;
\ir load_pgtap.psql
SELECT plan(15);

SELECT is(public.step_succeeded(-900301, 1), false, 'an unknown step has not succeeded');

SELECT is(public.record_step(-900301, 1, 'search_replace', '/src/app.py', 'pending', NULL), 'recorded', 'setup: record pending');
SELECT is(public.step_succeeded(-900301, 1), false, 'a pending step has not succeeded');

SELECT is(public.record_step(-900301, 1, 'search_replace', '/src/app.py', 'failed', 10, 'search text not found'), 'recorded', 'setup: record failed');
SELECT is(public.step_succeeded(-900301, 1), false, 'a failed step has not succeeded');

SELECT is(public.record_step(-900301, 1, 'search_replace', '/src/app.py', 'success', 10), 'recorded', 'setup: record success');
SELECT is(public.step_succeeded(-900301, 1), true, 'a successful step has succeeded');
SELECT is(public.step_succeeded(-900301, 1, NULL), true, 'a NULL hash means any definition');
SELECT is(public.step_succeeded(-900301, 1, public.jr_step_content_hash(-900301, 1, 'search_replace', '/src/app.py')),
    true, 'the same definition''s hash: succeeded');
SELECT is(public.step_succeeded(-900301, 1, public.jr_step_content_hash(-900301, 1, 'search_replace', '/src/other.py')),
    false, 'a changed definition''s hash: not done');
SELECT is(public.step_succeeded(-900301, 1, ''), false, 'an empty hash matches nothing');
SELECT is(public.step_succeeded(-900301, 2), false, 'another step of the same task is not affected');
SELECT is(public.step_succeeded(-900302, 1), false, 'the same step of another task is not affected');

SELECT is(public.record_step(-900301, 1, 'search_replace', '/src/app.py', 'pending', NULL), 'recorded', 'setup: record pending');
SELECT is(public.step_succeeded(-900301, 1), false, 'a step whose retry has started is no longer done');

SELECT * FROM finish();
ROLLBACK;
