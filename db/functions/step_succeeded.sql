-- step_succeeded(task_id, step_number, step_content_hash): the retry check. True only when the
-- step's current result is success and, when a hash is given, the stored hash equals it, so a step
-- whose definition changed does not count as done. Reads one row by its key alone, planned anew
-- for each call (plan_cache_mode): a plan cached while the table was empty would keep going through
-- another index as it grows (about 20 µs a call, measured, against a plan that can go wrong).
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.step_succeeded(
    task_id integer,
    step_number integer,
    step_content_hash text DEFAULT NULL
)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    current_result varchar;
    stored_hash varchar;
BEGIN
    IF step_succeeded.task_id IS NULL OR step_succeeded.step_number IS NULL THEN
        RAISE EXCEPTION 'step_succeeded: % must not be NULL',
                CASE WHEN step_succeeded.task_id IS NULL THEN 'task_id' ELSE 'step_number' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT r.execution_result, r.step_content_hash INTO current_result, stored_hash
    FROM public.jr_step_rewards r
    WHERE r.task_id = step_succeeded.task_id AND r.step_number = step_succeeded.step_number;
    RETURN coalesce(current_result = 'success'
                    AND (step_succeeded.step_content_hash IS NULL OR stored_hash = step_succeeded.step_content_hash),
                    false);
END
$$;

COMMENT ON FUNCTION public.step_succeeded(integer, integer, text) IS
    'True when the step''s current result is success (and, if a hash is given, its stored step_content_hash equals it): the executor skips such a step on a retry.';

REVOKE ALL ON FUNCTION public.step_succeeded(integer, integer, text) FROM PUBLIC;
