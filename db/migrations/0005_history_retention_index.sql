-- 0005: a BRIN index on jr_step_attempts.received_at, for prune_step_attempts. The history is
-- append-only, so received_at follows the table's physical order and a BRIN index (a few pages,
-- next to no cost per insert) lets a prune call read only the oldest block ranges instead of the
-- whole table, including its last call, which finds nothing left to delete.
CREATE INDEX idx_step_attempts_received_at ON public.jr_step_attempts USING brin (received_at);
