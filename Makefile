# Every job has a target here; README.md names each one. CI runs `make test`.
#
# Target database: when PGHOST or PGSERVICE is set, every target uses that server exactly as the
# libpq variables describe it and never starts the embedded one. Otherwise the targets use the
# embedded cluster in .pg/ (git-ignored), started on demand and stopped by `make db-stop`.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
EMBEDDED_ROOT := .pg
EMBEDDED_DB := jr_steps

ifeq ($(strip $(PGHOST)$(PGSERVICE)),)
  EMBEDDED := 1
  export PGHOST := $(shell scripts/pgcluster env $(EMBEDDED_ROOT) | sed -n 's/^PGHOST=//p')
  export PGPORT := $(shell scripts/pgcluster env $(EMBEDDED_ROOT) | sed -n 's/^PGPORT=//p')
  export PGUSER := postgres
  export PGDATABASE := $(EMBEDDED_DB)
  # The embedded database is started, and migrated, before anything that needs it.
  TARGET_DB := db
  MIGRATED_DB := db migrate
else
  TARGET_DB :=
  MIGRATED_DB :=
endif

.PHONY: help setup db db-stop migrate pgtap pytest test soak bench lint where demo prune uninstall

help:
	@echo "make demo      run a sample task twice on the embedded database: the retry skips finished steps"
	@echo "make setup     install PostgreSQL, pgTAP, pg_prove, plpgsql_check (apt, if missing) and the venv"
	@echo "make db        start the embedded database (.pg/); make db-stop stops it"
	@echo "make migrate   install or upgrade the ledger in the target database"
	@echo "make pgtap     run the pgTAP suite with pg_prove (rolled back, safe on production)"
	@echo "make test      setup, database, migrate, pgtap, then pytest"
	@echo "make soak      the fault and load tests, longer: restarts every fifth step, 8 x 5000 records"
	@echo "make bench     measure against the seed's approach and the floor (scratch databases; BENCH_ARGS=...)"
	@echo "make lint      ruff, and plpgsql_check on every function"
	@echo "make prune OLDER_THAN='90 days'   delete history rows stored longer ago than that"
	@echo "make uninstall CONFIRM=yes        remove the ledger, its data and unused roles from the target database"
	@echo "make where     show which database the targets use"

setup:
	@scripts/setup.sh

$(PY):
	@scripts/setup.sh

db: $(PY)
	@scripts/pgcluster start $(EMBEDDED_ROOT) $(EMBEDDED_DB)

db-stop:
	@scripts/pgcluster stop $(EMBEDDED_ROOT)

where:
	@echo "target database: $(if $(EMBEDDED),embedded ($(EMBEDDED_ROOT)/),server from the libpq variables)" \
	    "host=$${PGHOST:-} port=$${PGPORT:-} user=$${PGUSER:-} dbname=$${PGDATABASE:-} service=$${PGSERVICE:-}"

migrate: $(PY) $(TARGET_DB)
	@$(PY) db/migrate.py

pgtap: $(PY) $(MIGRATED_DB)
	@pg_prove --failures --ext .sql db/tests/

pytest: $(PY)
	@$(VENV)/bin/pytest -q tests

test: setup $(MIGRATED_DB)
	@$(MAKE) --no-print-directory pgtap pytest

# Scratch databases of its own on the target server, dropped at the end; see bench/bench.py --help.
bench: $(PY) $(TARGET_DB)
	@$(PY) bench/bench.py $(BENCH_ARGS)

# Slower than make test, and self-contained like pytest: its own throwaway clusters.
soak: $(PY)
	@JR_SOAK=1 $(VENV)/bin/pytest -q tests/test_faults.py tests/test_load.py

# The demo always uses the embedded database: it writes sample rows nobody asked for elsewhere.
demo: $(PY)
ifeq ($(EMBEDDED),1)
	@$(MAKE) --no-print-directory db migrate >/dev/null
	@scripts/demo.sh
else
	@env -u PGHOST -u PGSERVICE -u PGPORT -u PGUSER -u PGDATABASE $(MAKE) --no-print-directory demo
endif

lint: $(PY) $(MIGRATED_DB)
	@$(VENV)/bin/ruff check db python_client tests bench
	@scripts/plpgsql-lint.sh

prune: $(PY) $(TARGET_DB)
	@scripts/prune.sh

# Deletes data: refuses without CONFIRM=yes.
uninstall: $(PY) $(TARGET_DB)
	@if [ "$(CONFIRM)" != yes ]; then \
	    echo "make uninstall drops the step ledger from $${PGDATABASE:-the default database} on $${PGHOST:-$${PGSERVICE:-localhost}}:" >&2; \
	    echo "  tables jr_step_rewards, jr_step_attempts, jr_exploration_log, jr_schema_migrations WITH ALL THEIR ROWS," >&2; \
	    echo "  its views and functions, and the roles jr_executor and jr_reader when nothing else uses them." >&2; \
	    echo "Nothing was done. To go ahead: make uninstall CONFIRM=yes" >&2; \
	    exit 2; \
	fi
	@psql -X -q -v ON_ERROR_STOP=1 --single-transaction -f db/uninstall.sql
	@echo "uninstall: the step ledger is gone from $${PGDATABASE:-the default database}"
