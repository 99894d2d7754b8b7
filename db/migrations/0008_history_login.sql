-- 0008: who really made each call. record_step's `executor` is the caller's own label, which it may
-- set to anything ('postgres', say); recorded_by is the database login of the session, which the
-- caller cannot choose (session_user, unchanged inside the SECURITY DEFINER function). Rows from
-- before this migration keep NULL: who made them is not known.
ALTER TABLE public.jr_step_attempts ADD COLUMN recorded_by TEXT;
ALTER TABLE public.jr_step_attempts ALTER COLUMN recorded_by SET DEFAULT session_user;
COMMENT ON COLUMN public.jr_step_attempts.recorded_by IS
    'The database login that made the call (session_user); the caller cannot set it. NULL for rows from before migration 0008.';
COMMENT ON COLUMN public.jr_step_attempts.executor IS
    'The executor''s own label for itself (hostname:pid by default), as the caller gave it; recorded_by says which login made the call.';
