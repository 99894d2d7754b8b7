-- 0009: what make migrate last applied of each function and view file, so that a run re-applies
-- only the files that changed, or whose object changed in the database since. CREATE OR REPLACE
-- VIEW takes ACCESS EXCLUSIVE on the view: re-creating every view on every run made a no-op migrate
-- wait for (and fail behind) any open transaction that had read one.
CREATE TABLE public.jr_schema_definitions (
    file text PRIMARY KEY,
    checksum text NOT NULL,
    in_catalog text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied_by text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE public.jr_schema_definitions IS
    'The function and view files of the Jr step ledger as make migrate last applied them; a file whose checksum differs is applied again.';
COMMENT ON COLUMN public.jr_schema_definitions.file IS 'The file, relative to db/ (functions/record_step.sql).';
COMMENT ON COLUMN public.jr_schema_definitions.checksum IS 'SHA-256 of the file as applied.';
COMMENT ON COLUMN public.jr_schema_definitions.in_catalog IS
    'The server''s major version and the MD5 of its object as the catalog gave it back once applied (pg_get_functiondef, pg_get_viewdef), as 17:9e10...; another MD5 under the same version means the object was changed in the database.';
COMMENT ON COLUMN public.jr_schema_definitions.applied_at IS 'When it was last applied.';
COMMENT ON COLUMN public.jr_schema_definitions.applied_by IS 'The login that applied it.';
