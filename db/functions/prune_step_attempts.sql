-- prune_step_attempts(older_than, batch_size): retention for the history. Deletes at most
-- batch_size rows of jr_step_attempts that the ledger stored (received_at) longer ago than
-- older_than, and returns how many it deleted. Call it until it returns 0
-- (`make prune` does): a function cannot commit, so one call is one batch in one short
-- transaction, and no call holds its locks for long. Rows another session has locked are left
-- for the next call. jr_step_rewards, the current state, is never touched.
-- A DBA tool: not granted to jr_executor. Errors: NULL arguments 22004, a negative age or a batch
-- size below 1 22023.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.prune_step_attempts(
    older_than interval,
    batch_size integer DEFAULT 10000
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted bigint;
BEGIN
    IF prune_step_attempts.older_than IS NULL OR prune_step_attempts.batch_size IS NULL THEN
        RAISE EXCEPTION 'prune_step_attempts: % must not be NULL',
                CASE WHEN prune_step_attempts.older_than IS NULL THEN 'older_than' ELSE 'batch_size' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF prune_step_attempts.older_than < interval '0' THEN
        RAISE EXCEPTION 'prune_step_attempts: older_than must not be negative, got %', prune_step_attempts.older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF prune_step_attempts.batch_size < 1 THEN
        RAISE EXCEPTION 'prune_step_attempts: batch_size must be 1 or more, got %', prune_step_attempts.batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The BRIN index on received_at leads to the old block ranges; no ORDER BY, so a batch stops
    -- as soon as it has batch_size rows instead of sorting every old row first. The rows are
    -- locked, then deleted by their physical address (a TID scan), never by a scan of the table.
    DELETE FROM public.jr_step_attempts AS a
    WHERE a.ctid = ANY (ARRAY(
        SELECT old.ctid
        FROM public.jr_step_attempts old
        WHERE old.received_at < now() - prune_step_attempts.older_than
        LIMIT prune_step_attempts.batch_size
        FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

COMMENT ON FUNCTION public.prune_step_attempts(interval, integer) IS
    'Retention: deletes at most batch_size history rows stored longer ago than older_than and returns how many; call until it returns 0. Never touches jr_step_rewards. For DBAs, not granted to jr_executor.';

REVOKE ALL ON FUNCTION public.prune_step_attempts(interval, integer) FROM PUBLIC;
