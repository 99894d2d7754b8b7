-- jr_elide_middle(value, max_chars): value itself when it fits; otherwise its head and tail around
-- a visible marker that says how many characters were cut, at most max_chars characters in all.
-- Counts characters, not bytes, so a multibyte path is never cut inside a character.
-- The head keeps a path's root and an error's first line, the tail a file name and an error's last line.
-- pgspot PS002: OR REPLACE, as make migrate applies this file again when it changes; a function
-- of this name that another role owns is refused first (README, Objects found in place).
CREATE OR REPLACE FUNCTION public.jr_elide_middle(value text, max_chars integer)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total integer := length(jr_elide_middle.value);
    marker_width integer;
    keep integer;
BEGIN
    IF total IS NULL OR total <= jr_elide_middle.max_chars THEN
        RETURN jr_elide_middle.value;
    END IF;
    -- The marker counts the cut characters, which depends on how many are kept: size it for the
    -- whole length first (too wide), then for what that cuts. The second width is never smaller
    -- than what the final count needs, and fills max_chars but for a digit at most.
    marker_width := length(format('…[%s characters cut]…', total));
    keep := greatest(jr_elide_middle.max_chars - marker_width, 0);
    marker_width := length(format('…[%s characters cut]…', total - keep));
    keep := greatest(jr_elide_middle.max_chars - marker_width, 0);
    RETURN left(jr_elide_middle.value, (keep + 1) / 2)
        || format('…[%s characters cut]…', total - keep)
        || right(jr_elide_middle.value, keep / 2);
END
$$;

COMMENT ON FUNCTION public.jr_elide_middle(text, integer) IS
    'Shortens text to at most max_chars characters, keeping head and tail around a marker that counts the cut characters. Internal to record_step().';

REVOKE ALL ON FUNCTION public.jr_elide_middle(text, integer) FROM PUBLIC;
