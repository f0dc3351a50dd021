"""The benchmark's smoke run (50 readers, 5 entries, a restart, 600 entries written; no reference).

It keeps `make bench` from rotting; the numbers themselves belong to the benchmark, not to tests."""
import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT


def test_benchmark_smoke_run_delivers_everything(tmp_path):
    if not (ROOT / "bench" / "node_modules").exists():
        pytest.fail("bench/node_modules is missing: `make test` installs it (npm ci in bench/)")
    out = tmp_path / "results" / "smoke.json"  # a folder that is not there yet, as in a fresh clone
    # A reader-count tick a second (the default is 12 s): the run waits out two of them.
    result = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--json", str(out)], cwd=ROOT,
                            env={**os.environ, "READERS_SECONDS": "1"}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    [run] = report["fanout"]
    assert (run["server"], run["readers"], run["entries"]) == ("tracker", 50, 5)
    assert run["joined"] == 50 and run["connect_failed"] == 0 and run["server_alive"]
    assert run["expected"] == run["received"] == 250 and run["lost"] == 0 and run["duplicates"] == 0
    assert {"p50", "p99", "max"} <= set(run["latency_ms"]) and run["rss_per_conn_kb"] > 0
    storm = run["storm"]
    assert storm["caught_up"] == storm["readers"] == 50 and storm["caught_up_all_ms"] > 0
    side = report["server_side"]
    assert side["entries"] == 600 and side["write_errors"] == 0 and side["writes_per_s"] > 0
    assert side["page_ms"] > 0 and side["catchup_500_ms"] > 0
