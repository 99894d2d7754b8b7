#!/usr/bin/env bash
# make pgtap: db/tests/*.sql through pg_prove, on the database the libpq variables name. Each file is
# one transaction that ends in ROLLBACK; pgTAP is loaded the least intrusive way the server allows,
# and the first line says which:
#   installed  the pgtap extension is already in the database;
#   extension  the server has pgTAP's files and the login may create it: CREATE EXTENSION in each
#              test's transaction, rolled back with it;
#   script     otherwise pgTAP's plain SQL script, loaded into a schema of each test's transaction
#              (needs CREATE on the database, which its owner has): nothing on the server, nothing left.
# Tests that act out the roles need membership in jr_executor, jr_rewarder and jr_reader; without it
# they are skipped, and the last line counts them and gives the GRANT that would run them.
set -euo pipefail
cd "$(dirname "$0")/.."

state=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -c "
    SELECT CASE WHEN e.extversion IS NOT NULL THEN 'installed'
                WHEN v.version IS NOT NULL AND (NOT v.superuser OR v.trusted OR u.rolsuper) THEN 'extension'
                ELSE 'script' END,
           coalesce(e.extversion, v.version, ''),
           has_schema_privilege('public', 'CREATE'), has_database_privilege(current_database(), 'CREATE'),
           quote_ident(current_user), quote_ident(current_database()),
           coalesce(r.missing, ''), coalesce(r.creates, ''),
           r.missing IS NULL AND pg_has_role('jr_executor', 'MEMBER') AND pg_has_role('jr_rewarder', 'MEMBER')
               AND pg_has_role('jr_reader', 'MEMBER')
    FROM (SELECT string_agg(w.name, ', ' ORDER BY w.n) AS missing,
                 string_agg(format('CREATE ROLE %s NOLOGIN;', w.name), ' ' ORDER BY w.n) AS creates
          FROM unnest(ARRAY['jr_executor', 'jr_rewarder', 'jr_reader']) WITH ORDINALITY w(name, n)
          WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = w.name)) r
    CROSS JOIN pg_roles u
    LEFT JOIN pg_extension e ON e.extname = 'pgtap'
    LEFT JOIN pg_available_extensions a ON a.name = 'pgtap'
    LEFT JOIN pg_available_extension_versions v ON v.name = 'pgtap' AND v.version = a.default_version
    WHERE u.rolname = current_user")
IFS='|' read -r load version may_create_schema may_create_database login database missing_roles create_roles is_member \
    <<<"$state"

if [ -n "$missing_roles" ]; then
    echo "pgtap: roles the suite tests do not exist: $missing_roles. Run make migrate as a login that may create" \
         "roles, or have a DBA run $create_roles then make migrate" >&2
    exit 1
fi

script=
# JR_PGTAP_LOAD=script forces the script, to prove that path on a server that has the extension.
[ "${JR_PGTAP_LOAD:-}" != script ] || load=script
if [ "$load" = extension ] && [ "$may_create_schema" != t ]; then load=script; fi
case "$load" in
    installed) echo "pgtap: pgTAP $version, the extension installed in $database" ;;
    extension) echo "pgtap: pgTAP $version, created by each test file's transaction and rolled back with it" ;;
    script)
        if [ "$may_create_database" != t ]; then
            echo "pgtap: cannot load pgTAP in $database: the server has no pgtap extension that $login may create," \
                 "and $login may not create a schema there. A DBA can either install it (the server's" \
                 "postgresql-NN-pgtap package, then CREATE EXTENSION pgtap) or let $login load it for each test:" \
                 "GRANT CREATE ON DATABASE $database TO $login" >&2
            exit 1
        fi
        script=$(scripts/setup.sh pgtap-script)
        echo "pgtap: pgTAP from its SQL script $script, loaded into each test file's transaction and rolled back" \
             "with it (the server has no pgtap extension that $login may create)"
        ;;
esac

output=$(mktemp)
trap 'rm -f "$output"' EXIT
status=0
pg_prove --failures --directives --ext .sql --set pgtap_load="$load" --set pgtap_script="$script" db/tests/ \
    >"$output" 2>&1 || status=$?
# --directives lists each skipped test inside its file's progress line: count them, print the rest.
skip='ok [0-9]+ [^\n]*# (skip|SKIP)[^\n]*\n'
perl -0pe "s/\\n((?:$skip)+)(?=ok\\n)//g; s/(?:$skip)+//g" "$output"
skipped=$(grep -c -E '^ok [0-9]+ .*# (skip|SKIP)' "$output" || true)
if [ "$skipped" -gt 0 ] && [ "$is_member" != t ]; then
    echo "pgtap: $skipped tests skipped: $login is not a member of jr_executor, jr_rewarder and jr_reader, so the" \
         "tests that act out those roles cannot SET ROLE. To run them: GRANT jr_executor, jr_reader, jr_rewarder TO $login"
elif [ "$skipped" -gt 0 ]; then
    echo "pgtap: $skipped tests skipped:"
    grep -E '^ok [0-9]+ .*# (skip|SKIP)' "$output"
fi
exit "$status"
