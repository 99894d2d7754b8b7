-- jr_raise_row_violation(caller, task_id, step_number, sqlstate, table_name, constraint_name,
-- column_name): raises a constraint error met on a step's row again, for record_step and
-- set_step_reward, with its SQLSTATE, a message naming the step and the constraint, and no
-- DETAIL: PostgreSQL's own DETAIL ("Failing row contains ...") would hand the whole row, legacy
-- error_detail and all, to a caller who may not read it. Internal: the owner's functions call it.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.jr_raise_row_violation(
    caller text,
    task_id integer,
    step_number integer,
    sqlstate text,
    table_name text,
    constraint_name text,
    column_name text
)
RETURNS void
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%: task % step %: its row in % breaks %', jr_raise_row_violation.caller,
            jr_raise_row_violation.task_id, jr_raise_row_violation.step_number,
            coalesce(nullif(jr_raise_row_violation.table_name, ''), 'jr_step_rewards'),
            CASE WHEN jr_raise_row_violation.constraint_name <> '' THEN 'constraint ' || jr_raise_row_violation.constraint_name
                 WHEN jr_raise_row_violation.column_name <> '' THEN 'NOT NULL on column ' || jr_raise_row_violation.column_name
                 ELSE 'a constraint' END
        USING ERRCODE = jr_raise_row_violation.sqlstate, TABLE = coalesce(jr_raise_row_violation.table_name, ''),
              CONSTRAINT = coalesce(jr_raise_row_violation.constraint_name, ''),
              COLUMN = coalesce(jr_raise_row_violation.column_name, ''),
              HINT = 'The row''s contents are not shown. A row written before the constraint existed (added NOT VALID by make migrate) can break it: a DBA can fix the row, then VALIDATE the constraint.';
END
$$;

COMMENT ON FUNCTION public.jr_raise_row_violation(text, integer, integer, text, text, text, text) IS
    'Raises a constraint error met on a step''s row again, with its SQLSTATE and a message naming the step and the constraint, never the row. Internal to record_step() and set_step_reward().';

REVOKE ALL ON FUNCTION public.jr_raise_row_violation(text, integer, integer, text, text, text, text) FROM PUBLIC;
