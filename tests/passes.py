"""`make test`'s runner: the suite's passes, at the same time, each in its own pytest process.

- sqlite: every test, on SQLite, spread over TEST_JOBS pytest-xdist workers; the tests marked
  `serial` (timing-sensitive) share one worker and run one after another there.
- postgresql: the engine-dependent tests (see conftest.py) again, on PostgreSQL
  (TEST_DATABASE_URL=TEST_POSTGRES_URL); skipped with a message when no server answers,
  except in CI (CI=true), where that fails.
- fast-fanout-off: the end-to-end tests (test_e2e, test_fanout) once more on SQLite with
  FAST_FANOUT=0, eventlet with the broadcast fast path off; and the guard tests of a websocket
  frame that is not an Engine.IO packet and of binary data (read there by engineio's handler,
  not the fast path's; a dropped connection is closed there without hanging up).
- gevent: the end-to-end, browser and guard tests (test_e2e, test_fanout, test_browser,
  test_guard) once more on SQLite, the server in ASYNC_MODE=gevent (app.py's second async mode,
  which has no fast path: FAST_FANOUT=0 too): gevent's server, HTTP parsing and websocket are not
  eventlet's, and one client must not stall either. The browser tests run here rather
  than in fast-fanout-off: both are the libraries' own delivery paths, and running them twice
  more would cost the suite a minute.

Each pass's output is printed when it ends; then every pass's wall time and result. Extra
pytest arguments come from PYTEST_ARGS (as in `make test PYTEST_ARGS="-k reconnect"`). A pass
that collects no test (pytest's exit code 5) fails the run, unless PYTEST_ARGS narrowed the
selection and another pass ran tests; it is always reported.
Usage: python tests/passes.py [PASS...] (default: all four).
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
NO_TESTS = 5
# The libraries' delivery paths: end to end, and a frame Engine.IO cannot decode and binary data, on
# eventlet without the fast path; end to end, with the browser and the guards, on gevent (whose
# servers LiveServer starts with ASYNC_MODE passed on).
END_TO_END_TESTS = ["tests/test_e2e.py", "tests/test_fanout.py"]
FANOUT_OFF_TESTS = END_TO_END_TESTS + [
    "tests/test_guard.py::test_a_frame_that_is_not_an_engineio_packet_ends_the_connection_quietly",
    "tests/test_guard.py::test_binary_data_ends_the_connection_for_abuse"]
GEVENT_TESTS = END_TO_END_TESTS + ["tests/test_browser.py", "tests/test_guard.py"]


def main(selected: list[str]) -> int:
    postgres_url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    extra = shlex.split(os.environ.get("PYTEST_ARGS", ""))
    jobs = os.environ.get("TEST_JOBS", "2")
    xdist = ["-n", jobs, "--dist", "loadgroup"] if jobs not in ("", "0", "1") else []
    base_env = {**os.environ, "TEST_POSTGRES_URL": postgres_url}
    base_env.pop("TEST_DATABASE_URL", None)
    pytest = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider"]
    passes = {
        "sqlite": (pytest + xdist + extra, base_env),
        "postgresql": (pytest + xdist + ["-m", "engine_dependent"] + extra,
                       {**base_env, "TEST_DATABASE_URL": postgres_url}),
        "fast-fanout-off": (pytest + FANOUT_OFF_TESTS + extra, {**base_env, "FAST_FANOUT": "0"}),
        "gevent": (pytest + GEVENT_TESTS + extra, {**base_env, "ASYNC_MODE": "gevent", "FAST_FANOUT": "0"}),
    }
    selected = selected or list(passes)
    results: dict[str, tuple[str, float]] = {}
    if "postgresql" in selected and not reachable(postgres_url):
        selected.remove("postgresql")
        if os.environ.get("CI") == "true":
            print(f"PostgreSQL is required in CI: no server at {postgres_url}")
            results["postgresql"] = ("FAILED: no server", 0.0)
        else:
            print(f"== PostgreSQL pass skipped: no server at {postgres_url} ==")
            results["postgresql"] = ("skipped: no server", 0.0)

    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="tracker-test-"))
    running = {}
    for name in selected:
        command, env = passes[name]
        log = (logs / f"{name}.log").open("w")
        print(f"== {name}: {shlex.join(command[1:])}", flush=True)
        running[name] = (subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True),  # a process group of its own, see stop()
                         time.monotonic(), log)
    codes: dict[str, int] = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        wait(running, codes, results, logs)
    finally:  # interrupted: stop every pass's pytest (and through it its workers, servers, browsers)
        stop(running)

    ran_tests = any(code != NO_TESTS for code in codes.values())
    failed = any(code not in (0, NO_TESTS) for code in codes.values())
    failed |= any(code == NO_TESTS for code in codes.values()) and (not extra or not ran_tests)
    failed |= any(result.startswith("FAILED") for result, _ in results.values())
    print("\n===== make test: wall time of each pass (they run at the same time) =====")
    for name, (result, elapsed) in results.items():
        print(f"  {name:16} {fmt(elapsed):>8}  {result}")
    print(f"  {'total':16} {fmt(time.monotonic() - started):>8}  {'FAILED' if failed else 'passed'}")
    return 1 if failed else 0


def wait(running: dict, codes: dict, results: dict, logs: Path) -> None:
    while running:
        for name, (process, start, log) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            codes[name] = process.returncode
            elapsed = time.monotonic() - start
            print(f"\n===== {name} pass (exit code {process.returncode}, {elapsed:.0f} s) =====", flush=True)
            sys.stdout.write((logs / f"{name}.log").read_text(errors="replace"))
            sys.stdout.flush()
            results[name] = (outcome(process.returncode), elapsed)
            del running[name]
        time.sleep(0.5)


def stop(running: dict) -> None:
    for process, _, _ in running.values():
        os.killpg(process.pid, signal.SIGINT)  # pytest ends its xdist workers on KeyboardInterrupt
    for process, _, _ in running.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def outcome(code: int) -> str:
    if code == 0:
        return "passed"
    if code == NO_TESTS:
        return "NO TESTS collected (pytest exit code 5)"
    return f"FAILED (pytest exit code {code})"


def fmt(seconds: float) -> str:
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def reachable(url: str) -> bool:
    return subprocess.run([PYTHON, str(ROOT / "tests" / "reachable.py"), url], cwd=ROOT).returncode == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
