-- 0006: say what attempt_number really is. record_step numbers a step's runs in the order the ledger
-- receives them, so an event replayed late from a spool takes the next number, whatever its
-- event time; recorded_at gives the order in which the runs happened.
COMMENT ON COLUMN public.jr_step_attempts.attempt_number IS
    'Which run of the step this event belongs to, in the order the ledger received the runs: 1 for the first, 2 for the next; a pending marker carries the number of the run it announces. An event replayed late from a spool takes the next number; order by recorded_at for the order in which runs happened.';
