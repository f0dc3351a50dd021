"""The benchmark's smoke run (50 readers, 5 entries, no reference), so `make bench` cannot rot."""
import json
import subprocess
import sys

import pytest
from conftest import ROOT


def test_benchmark_smoke_run_delivers_everything(tmp_path):
    if not (ROOT / "bench" / "node_modules").exists():
        pytest.fail("bench/node_modules is missing: `make test` installs it (npm ci in bench/)")
    out = tmp_path / "smoke.json"
    result = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [run] = json.loads(out.read_text())
    assert (run["server"], run["readers"], run["entries"]) == ("tracker", 50, 5)
    assert run["joined"] == 50 and run["connect_failed"] == 0 and run["server_alive"]
    assert run["expected"] == run["received"] == 250 and run["lost"] == 0 and run["duplicates"] == 0
    assert {"p50", "p99", "max"} <= set(run["latency_ms"]) and run["rss_per_conn_kb"] > 0
