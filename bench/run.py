"""Fan-out benchmark: N websocket readers on one story, M entries published at a steady rate.

    .venv/bin/python bench/run.py --smoke
    .venv/bin/python bench/run.py --readers 1000,5000 --entries 10 [--rate 2] [--no-reference] [--json out.json]

For each N: Tracker's real server (app.py, eventlet, fresh SQLite) and then the reference
Node socket.io server (bench/reference/server.js), each loaded by bench/loadclient.js.
Everything runs on this machine: the load client competes with the server for the CPUs.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = ROOT / ".venv" / "bin" / "python"
FLASK = ROOT / ".venv" / "bin" / "flask"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_s(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wait_http(url, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer {url}")


def post_json(url, body, token=None, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Tracker:
    name = "tracker"

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="tracker-bench-")
        self.port = free_port()
        self.env = dict(os.environ, DATABASE_URL=f"sqlite:///{self.tmp}/bench.sqlite",
                        SECRET_KEY="bench-secret-" + os.urandom(8).hex(), FLASK_DEBUG="0")
        self.env.pop("SOCKETIO_MESSAGE_QUEUE", None)
        self.log = open(Path(self.tmp) / "server.log", "w")
        self.proc = subprocess.Popen([str(PY), "app.py", "--port", str(self.port)], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_http(self.base + "/api/stories", self.proc)
        out = subprocess.run([str(FLASK), "--app", "app", "token", "create", "bench"], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, check=True).stdout
        self.token = out.strip().splitlines()[-1]
        status, story = post_json(self.base + "/api/stories", {"title": "Bench story", "slug": "bench"}, self.token)
        self.slug = story.get("slug", "bench") if isinstance(story, dict) else "bench"
        if isinstance(story, dict) and isinstance(story.get("story"), dict):
            self.slug = story["story"].get("slug", self.slug)

    def publish(self, seq):
        return post_json(f"{self.base}/api/stories/{self.slug}/entries",
                         {"headline": f"bench #{seq}", "body": f"Bench update number **{seq}**. " + "x" * 200},
                         self.token)

    def stop(self):
        stop(self.proc)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Reference:
    name = "reference"

    def start(self):
        self.port = free_port()
        self.slug = "bench"
        self.tmp = tempfile.mkdtemp(prefix="reference-bench-")
        self.log = open(Path(self.tmp) / "server.log", "w")
        self.proc = subprocess.Popen(["node", str(BENCH / "reference" / "server.js"), "--port", str(self.port)],
                                     cwd=BENCH, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_http(self.base + "/health", self.proc)

    def publish(self, seq):
        # Same shape and about the same size as Tracker's entry state.
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body = {"id": seq, "rev": seq + 1, "story": self.slug, "headline": f"bench #{seq}",
                "html": f"<p>Bench update number <strong>{seq}</strong>. {'x' * 200}</p>", "author": None,
                "created_at": now, "updated_at": now, "edited_at": None, "pinned": False, "key": False,
                "deleted": False, "url": f"/stories/{self.slug}/entries/{seq}"}
        return post_json(self.base + "/publish", body)

    def stop(self):
        stop(self.proc)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_one(server_cls, readers, entries, rate, concurrency):
    server = server_cls()
    client = None
    try:
        server.start()
        pid = server.proc.pid
        time.sleep(1.0)
        idle = rss_kb(pid)
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        client = subprocess.Popen(["node", str(BENCH / "loadclient.js"), "--url", url, "--readers", str(readers),
                                   "--story", server.slug, "--concurrency", str(concurrency),
                                   "--connect-timeout", str(60 + readers / 50)],
                                  cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  preexec_fn=raise_nofile)
        cpu_before_connect = cpu_s(pid)
        ready = None
        for line in client.stdout:
            if line.startswith("READY "):
                ready = json.loads(line[6:])
                break
        if ready is None:
            raise RuntimeError(f"load client exited without READY (rc={client.wait()})")
        cpu_connect = cpu_s(pid) - cpu_before_connect
        time.sleep(1.0)
        loaded = rss_kb(pid)
        cpu0 = cpu_s(pid)
        publish_times, publish_http_ms, publish_errors = {}, [], []
        start = time.time() + 0.2
        for seq in range(1, entries + 1):
            delay = start + (seq - 1) / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            t = time.time() * 1000
            publish_times[seq] = t
            try:
                server.publish(seq)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                publish_errors.append(f"#{seq}: {exc!r}")
            publish_http_ms.append(time.time() * 1000 - t)
        timeout = 30 + readers / 500
        client.stdin.write("collect " + json.dumps({"publish": publish_times, "timeout": timeout}) + "\n")
        client.stdin.flush()
        result = None
        for line in client.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
                break
        cpu_publish = cpu_s(pid) - cpu0
        client.wait(10)
        if result is None:
            raise RuntimeError("load client exited without RESULT")
        alive = server.proc.poll() is None
        per_entry = result.pop("per_entry", None)
        publish_http_ms.sort()
        return {
            "server": server.name, "readers": readers, "entries": entries, "rate": rate,
            "joined": ready["joined"], "connect_failed": ready["failed"], "connect_errors": ready["errors"],
            "connect_all_s": (ready["connect_all_ms"] or 0) / 1000,
            "server_cpu_connect_s": round(cpu_connect, 3),
            "expected": result["expected"], "received": result["received"], "lost": result["lost"],
            "duplicates": result["duplicates"], "dropped_after_join": result["dropped"],
            "client_errors_end": result["errors"],
            "latency_ms": result["latency_ms"],
            "publish_http_ms": {"p50": publish_http_ms[len(publish_http_ms) // 2], "max": publish_http_ms[-1]},
            "publish_errors": publish_errors,
            "rss_idle_kb": idle["VmRSS"], "rss_loaded_kb": loaded["VmRSS"], "rss_peak_kb": rss_kb(pid)["VmHWM"],
            "rss_per_conn_kb": round((loaded["VmRSS"] - idle["VmRSS"]) / max(1, ready["joined"]), 2),
            "server_cpu_publish_s": round(cpu_publish, 3),
            "cpu_us_per_delivery": round(cpu_publish * 1e6 / max(1, result["received"]), 2),
            "server_alive": alive, "per_entry": per_entry,
        }
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait()
        server.stop()


ROWS = [
    ("joined", lambda r: f"{r['joined']}/{r['readers']}"),
    ("connect failures", lambda r: r["connect_failed"]),
    ("connect+join all (s)", lambda r: f"{r['connect_all_s']:.2f}"),
    ("latency p50 (ms)", lambda r: fmt(r["latency_ms"]["p50"])),
    ("latency p99 (ms)", lambda r: fmt(r["latency_ms"]["p99"])),
    ("latency max (ms)", lambda r: fmt(r["latency_ms"]["max"])),
    ("lost deliveries", lambda r: r["lost"]),
    ("dropped after join", lambda r: r["dropped_after_join"]),
    ("publish HTTP p50 (ms)", lambda r: fmt(r["publish_http_ms"]["p50"])),
    ("RSS idle (MB)", lambda r: f"{r['rss_idle_kb'] / 1024:.1f}"),
    ("RSS with N (MB)", lambda r: f"{r['rss_loaded_kb'] / 1024:.1f}"),
    ("RSS/conn (KB)", lambda r: f"{r['rss_per_conn_kb']:.1f}"),
    ("CPU connect phase (s)", lambda r: f"{r['server_cpu_connect_s']:.2f}"),
    ("CPU/delivery (us)", lambda r: f"{r['cpu_us_per_delivery']:.1f}"),
]
RATIO = {"connect+join all (s)": "connect_all_s", "latency p50 (ms)": ("latency_ms", "p50"),
         "latency p99 (ms)": ("latency_ms", "p99"), "latency max (ms)": ("latency_ms", "max"),
         "RSS/conn (KB)": "rss_per_conn_kb", "CPU/delivery (us)": "cpu_us_per_delivery",
         "CPU connect phase (s)": "server_cpu_connect_s"}


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def get(r, key):
    return r[key[0]][key[1]] if isinstance(key, tuple) else r[key]


def print_table(n, ours, ref):
    print(f"\n== {n} readers, {ours['entries']} entries at {ours['rate']}/s ==")
    print(f"{'':24}{'tracker':>14}{'reference':>14}{'ratio':>10}")
    for label, f in ROWS:
        a = f(ours)
        b = f(ref) if ref else "-"
        ratio = ""
        if ref and label in RATIO:
            x, y = get(ours, RATIO[label]), get(ref, RATIO[label])
            ratio = f"{x / y:.1f}x" if x is not None and y else ""
        print(f"{label:24}{a!s:>14}{b!s:>14}{ratio:>10}")
    for r in (ours, ref):
        if r and (r["connect_errors"] or r["publish_errors"] or r["client_errors_end"] or not r["server_alive"]):
            print(f"  {r['server']} errors: connect={r['connect_errors']} publish={r['publish_errors'][:3]} "
                  f"client={r['client_errors_end']} alive={r['server_alive']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readers", default="1000,5000,10000")
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="entries per second")
    p.add_argument("--concurrency", type=int, default=200, help="connections in flight while connecting")
    p.add_argument("--smoke", action="store_true", help="50 readers, 5 entries, no reference")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--json", help="write all results here")
    a = p.parse_args()
    if a.smoke:
        a.readers, a.entries, a.no_reference = "50", 5, True
    if not (BENCH / "node_modules" / "ws").exists():
        sys.exit("run `npm ci` in bench/ first")
    raise_nofile()
    started = time.time()
    results, ok = [], True
    for n in [int(x) for x in a.readers.split(",") if x.strip()]:
        ours = run_one(Tracker, n, a.entries, a.rate, a.concurrency)
        ref = None if a.no_reference else run_one(Reference, n, a.entries, a.rate, a.concurrency)
        print_table(n, ours, ref)
        results += [r for r in (ours, ref) if r]
        ok = ok and all(r["lost"] == 0 and r["connect_failed"] == 0 for r in (ours, ref) if r)
    verdict = "OK: no lost deliveries" if ok else "FAILED: losses or connect failures"
    print(f"\ntotal {time.time() - started:.1f} s; {verdict}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
