# Every job has a target here; README.md names each one. CI runs `make test`.
#
# Which database a target uses:
#   - test, demo and lint always use the embedded cluster in .pg/ (git-ignored), whatever the libpq
#     variables say: running the tests never touches a server named in the environment.
#   - migrate, pgtap, where, prune, uninstall and bench use the server the libpq variables name
#     when PGHOST or PGSERVICE is set, and the embedded cluster otherwise. For a server they install
#     only a client's tools (make setup-client), and each first prints one line saying where it acts.
# The embedded cluster's socket and port are computed when a recipe runs (scripts/on-database), so a
# first run on a machine without PostgreSQL installs it before anything asks where it is.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
EMBEDDED_ROOT := .pg

ifeq ($(strip $(PGHOST)$(PGSERVICE)),)
  TARGET_SETUP := setup
else
  TARGET_SETUP := setup-client
endif
ON_EMBEDDED := scripts/on-database embedded
ON_TARGET := scripts/on-database target
HERMETIC := scripts/on-database hermetic

.PHONY: help setup setup-client db db-stop where migrate pgtap pytest test soak bench lint pgspot demo prune uninstall \
    fresh-machine-check

help:
	@echo "make demo      run a sample task twice on the embedded database: the retry skips finished steps"
	@echo "make test      the whole suite on the embedded database: pgTAP through pg_prove, then pytest"
	@echo "make setup     install what is missing for the embedded database and the tests (apt, venv)"
	@echo "make setup-client   install only what acting on a remote server needs: psql, pg_prove, the venv"
	@echo "make db        start the embedded database (.pg/); make db-stop stops it"
	@echo "make where     connect to the target database and say which it is"
	@echo "make migrate   install or upgrade the ledger in the target database"
	@echo "make pgtap     run the pgTAP suite on the target database (rolled back, safe on production)"
	@echo "make soak      the fault and load tests, longer: restarts every fifth step, 8 x 5000 records"
	@echo "make bench     measure against the seed's approach, the floor and the peers, DBOS and LangGraph (BENCH_ARGS=...)"
	@echo "make lint      ruff, make pgspot, and plpgsql_check on every function (embedded database)"
	@echo "make pgspot    pgspot over every SQL file: fails on a finding neither fixed nor explained (no database)"
	@echo "make prune OLDER_THAN='90 days'   delete history rows stored longer ago than that"
	@echo "make uninstall CONFIRM=yes        remove the ledger, its data and unused roles from the target database"
	@echo "make fresh-machine-check          make demo and make test in a fresh Debian 12 (debootstrap; root)"
	@echo "Target database: the server PGHOST or PGSERVICE names, else the embedded one (test, demo, lint: always embedded)."

setup:
	@scripts/setup.sh embedded

setup-client:
	@scripts/setup.sh client

db: setup
	@scripts/pgcluster start $(EMBEDDED_ROOT) jr_steps

db-stop:
	@scripts/pgcluster stop $(EMBEDDED_ROOT)

where: $(TARGET_SETUP)
	@$(ON_TARGET) true

migrate: $(TARGET_SETUP)
	@$(ON_TARGET) $(PY) db/migrate.py

# On the embedded database it migrates first; on a server it never migrates by itself.
pgtap: $(TARGET_SETUP)
	@if [ -z "$${PGHOST:-}$${PGSERVICE:-}" ]; then $(ON_EMBEDDED) $(PY) db/migrate.py >/dev/null; fi
	@$(ON_TARGET) scripts/pgtap.sh

pytest: setup
	@$(HERMETIC) $(VENV)/bin/pytest -q tests

test: setup
	@$(ON_EMBEDDED) $(PY) db/migrate.py >/dev/null
	@$(ON_EMBEDDED) scripts/pgtap.sh
	@$(HERMETIC) $(VENV)/bin/pytest -q tests

# Scratch databases of its own on the target server, dropped at the end; see bench/bench.py --help.
bench: $(TARGET_SETUP)
	@$(ON_TARGET) $(PY) bench/bench.py $(BENCH_ARGS)

# Slower than make test, and self-contained like pytest: its own throwaway clusters.
soak: setup
	@JR_SOAK=1 $(HERMETIC) $(VENV)/bin/pytest -q tests/test_faults.py tests/test_load.py

# The demo writes sample rows, which nobody asked for on a real server.
demo: setup
	@$(ON_EMBEDDED) $(PY) db/migrate.py >/dev/null
	@$(ON_EMBEDDED) scripts/demo.sh

lint: setup
	@$(VENV)/bin/ruff check db python_client tests bench scripts/where.py scripts/pgspot.py
	@$(PY) scripts/pgspot.py
	@$(ON_EMBEDDED) $(PY) db/migrate.py >/dev/null
	@$(ON_EMBEDDED) scripts/plpgsql-lint.sh

# A reviewer, never needed at run time: only the venv, which holds pgspot (a test extra).
pgspot:
	@scripts/setup.sh venv
	@$(PY) scripts/pgspot.py

prune: $(TARGET_SETUP)
	@$(ON_TARGET) scripts/prune.sh

# Deletes data: refuses without CONFIRM=yes.
uninstall: $(TARGET_SETUP)
	@CONFIRM=$(CONFIRM) $(ON_TARGET) scripts/uninstall.sh

# Outside make test: a Debian 12 root with only git and make, where a clone runs make demo and make test.
fresh-machine-check:
	@scripts/fresh-machine-check.sh
