-- jr_step_content_hash(task_id, step_number, step_type, target_file): byte for byte the seed's Python,
--     hashlib.sha256(f"{task_id}:{step_number}:{step_type}:{target_file}".encode()).hexdigest()
-- so rows written before and after the ledger agree. A NULL target is spelled None, as Python prints it.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.jr_step_content_hash(
    task_id integer,
    step_number integer,
    step_type text,
    target_file text
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT encode(sha256(convert_to(format('%s:%s:%s:%s',
        jr_step_content_hash.task_id, jr_step_content_hash.step_number, jr_step_content_hash.step_type,
        coalesce(jr_step_content_hash.target_file, 'None')), 'UTF8')), 'hex');
$$;

COMMENT ON FUNCTION public.jr_step_content_hash(integer, integer, text, text) IS
    'SHA-256 hex of task_id:step_number:step_type:target_file (NULL target spelled None), the seed''s step_content_hash formula.';

REVOKE ALL ON FUNCTION public.jr_step_content_hash(integer, integer, text, text) FROM PUBLIC;
