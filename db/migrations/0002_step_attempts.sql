-- 0002: jr_step_attempts, the append-only history of every recorded attempt.
-- jr_step_rewards keeps one row per step and overwrites it; the failed attempts that later reward
-- work learns from survive here. event_id is the idempotency key: a replayed event is stored once.

CREATE TABLE public.jr_step_attempts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id UUID NOT NULL,
    task_id INTEGER NOT NULL,
    step_number INTEGER NOT NULL,
    attempt_number INTEGER NOT NULL,
    step_type VARCHAR(30) NOT NULL,
    target_file VARCHAR(500),
    step_content_hash VARCHAR(64),
    execution_result VARCHAR(20) NOT NULL,
    execution_time_ms INTEGER,
    error_detail TEXT,
    executor TEXT,
    recorded_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT jr_step_attempts_event_id_key UNIQUE (event_id),
    CONSTRAINT jr_step_attempts_result_known CHECK (execution_result IN ('pending', 'success', 'failed')),
    CONSTRAINT jr_step_attempts_step_number_nonnegative CHECK (step_number >= 0),
    CONSTRAINT jr_step_attempts_attempt_number_nonnegative CHECK (attempt_number >= 0),
    CONSTRAINT jr_step_attempts_time_nonnegative CHECK (execution_time_ms >= 0)
);

CREATE INDEX idx_step_attempts_step ON public.jr_step_attempts (task_id, step_number);

COMMENT ON TABLE public.jr_step_attempts IS
    'Append-only history: one row per event record_step received (a pending marker or an outcome), kept when jr_step_rewards is overwritten.';
COMMENT ON COLUMN public.jr_step_attempts.id IS 'Surrogate key, in the order the ledger received events.';
COMMENT ON COLUMN public.jr_step_attempts.event_id IS 'Idempotency key chosen by the caller (or generated): a replayed event with the same id is stored once.';
COMMENT ON COLUMN public.jr_step_attempts.task_id IS 'The task, as in jr_step_rewards.task_id.';
COMMENT ON COLUMN public.jr_step_attempts.step_number IS 'The step within the task, as in jr_step_rewards.step_number.';
COMMENT ON COLUMN public.jr_step_attempts.attempt_number IS 'Which run of the step this event belongs to: 1 for the first run, 2 for the first retry; a pending marker carries the number of the run it announces.';
COMMENT ON COLUMN public.jr_step_attempts.step_type IS 'search_replace, bash, or another executor step type (at most 30 characters).';
COMMENT ON COLUMN public.jr_step_attempts.target_file IS 'The file the step edits, middle-elided with a visible marker beyond 500 characters.';
COMMENT ON COLUMN public.jr_step_attempts.step_content_hash IS 'SHA-256 hex of task_id:step_number:step_type:target_file (full path; NULL spelled None), the seed''s formula.';
COMMENT ON COLUMN public.jr_step_attempts.execution_result IS 'pending (about to run), success or failed.';
COMMENT ON COLUMN public.jr_step_attempts.execution_time_ms IS 'Wall time of the run in milliseconds; NULL for a pending marker.';
COMMENT ON COLUMN public.jr_step_attempts.error_detail IS 'What went wrong, middle-elided with a visible marker beyond 16384 characters.';
COMMENT ON COLUMN public.jr_step_attempts.executor IS 'Who recorded it: the executor''s own identity, or the database login when it gave none.';
COMMENT ON COLUMN public.jr_step_attempts.recorded_at IS 'Event time: when the executor saw the result. Decides which event is newest.';
COMMENT ON COLUMN public.jr_step_attempts.received_at IS 'When the ledger stored the row; later than recorded_at for events replayed from a spool.';
