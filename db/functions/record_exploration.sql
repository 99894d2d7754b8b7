-- record_exploration(jr_type, task_type, novelty_score, curiosity_bonus, task_outcome): appends one
-- row to jr_exploration_log and returns its id.
-- task_outcome is success, failed, partial or abandoned (a CHECK too, migration 0004), or NULL.
-- Errors: NULL jr_type or task_type 22004, blank ones or an unknown outcome 22023, a type longer
-- than its column (50 and 100 characters) 22001, NaN or infinite scores 22003.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.record_exploration(
    jr_type text,
    task_type text,
    novelty_score double precision DEFAULT NULL,
    curiosity_bonus double precision DEFAULT NULL,
    task_outcome text DEFAULT NULL
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    jr_type_max CONSTANT integer := 50;     -- jr_exploration_log.jr_type is VARCHAR(50)
    task_type_max CONSTANT integer := 100;  -- jr_exploration_log.task_type is VARCHAR(100)
    new_id bigint;
BEGIN
    IF record_exploration.jr_type IS NULL OR record_exploration.task_type IS NULL THEN
        RAISE EXCEPTION 'record_exploration: % must not be NULL',
                CASE WHEN record_exploration.jr_type IS NULL THEN 'jr_type' ELSE 'task_type' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF btrim(record_exploration.jr_type) = '' OR btrim(record_exploration.task_type) = '' THEN
        RAISE EXCEPTION 'record_exploration: % must not be empty',
                CASE WHEN btrim(record_exploration.jr_type) = '' THEN 'jr_type' ELSE 'task_type' END
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(record_exploration.jr_type) > jr_type_max THEN
        RAISE EXCEPTION 'record_exploration: jr_type % is % characters, more than the % allowed',
                quote_literal(public.jr_elide_middle(record_exploration.jr_type, 80)),
                length(record_exploration.jr_type), jr_type_max
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF length(record_exploration.task_type) > task_type_max THEN
        RAISE EXCEPTION 'record_exploration: task_type % is % characters, more than the % allowed',
                quote_literal(public.jr_elide_middle(record_exploration.task_type, 120)),
                length(record_exploration.task_type), task_type_max
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF record_exploration.novelty_score IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)
       OR record_exploration.curiosity_bonus IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN
        RAISE EXCEPTION 'record_exploration: novelty_score and curiosity_bonus must be finite numbers, got % and %',
                record_exploration.novelty_score, record_exploration.curiosity_bonus
            USING ERRCODE = 'numeric_value_out_of_range';
    END IF;
    IF record_exploration.task_outcome NOT IN ('success', 'failed', 'partial', 'abandoned') THEN
        RAISE EXCEPTION 'record_exploration: task_outcome must be success, failed, partial or abandoned, got %',
                quote_literal(public.jr_elide_middle(record_exploration.task_outcome, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    INSERT INTO public.jr_exploration_log AS e (jr_type, task_type, novelty_score, curiosity_bonus, task_outcome)
    VALUES (record_exploration.jr_type, record_exploration.task_type, record_exploration.novelty_score,
            record_exploration.curiosity_bonus, record_exploration.task_outcome)
    RETURNING e.id::bigint INTO new_id;
    RETURN new_id;
END
$$;

COMMENT ON FUNCTION public.record_exploration(text, text, double precision, double precision, text) IS
    'Appends one row to jr_exploration_log and returns its id. task_outcome is success, failed, partial, abandoned or NULL; scores must be finite.';

REVOKE ALL ON FUNCTION public.record_exploration(text, text, double precision, double precision, text) FROM PUBLIC;
