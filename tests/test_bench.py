"""make bench still runs: a smoke run of every section, tiny, against a throwaway database server.
It asserts that the table is complete and that the scratch databases are gone; never a time."""

import subprocess
import sys

from pgcluster import REPO


def test_bench_runs_every_section_and_leaves_nothing_behind(cluster, tmp_path):
    out = tmp_path / "bench.txt"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench.py"), "--samples", "40", "--big-rows", "2000", "--duration", "1",
         "--clients", "1,2", "--cap", "3", "--out", str(out)],
        env=cluster.env("postgres"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = out.read_text()
    for heading in ("1. Recording one step", "1b. Recording one step, over loopback TCP", "2. Checking one step",
                    "3. Growth", "4. Concurrency", "5. Outage"):
        assert heading in table
    assert "record_step (this project, one call)" in table and "seed: new connection + raw upsert" in table
    assert "plans inside step_succeeded: Index" in table
    assert "more than 3 s" in table, "the seed's approach hangs on a silent peer and is cut off"
    assert cluster.admin("SELECT datname FROM pg_database WHERE datname LIKE 'jr_bench_%'") == []
