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
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


def busy_until_idle(pid, quiet=0.2, timeout=60.0):
    """Server CPU seconds spent from now until it has been idle for `quiet` seconds (its readers
    leaving, say): schedstat's nanoseconds, not the 10 ms ticks of cpu_s."""
    def ran():
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    start = last = ran()
    idle_since, deadline = time.time(), time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.02)
        now = ran()
        if now - last > 0.002:  # still at work
            idle_since = time.time()
        elif time.time() - idle_since >= quiet:
            return round(now - start, 3)
        last = now
    return None


def listen_overflows():
    """Connection attempts the kernel dropped because a listen queue was full (Linux, all sockets), or None."""
    try:
        names, values = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2]]
        return int(dict(zip(names, values, strict=True))["ListenOverflows"])
    except (OSError, ValueError, KeyError):
        return None


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


def profile_phase(pid, path, phase):
    """Start py-spy on the server; the output goes to <path stem>-<phase><suffix>."""
    path = Path(path)
    out = path.with_name(f"{path.stem}-{phase}{path.suffix}")
    fmt = {".json": "speedscope", ".svg": "flamegraph"}.get(path.suffix, "raw")
    spy = subprocess.Popen([str(PY.parent / "py-spy"), "record", "-p", str(pid), "-r", "200", "-f", fmt,
                            "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # py-spy attaches asynchronously; the phase must not start before it samples
    return spy


def stop_profile(spy):
    if spy and spy.poll() is None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


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
                        SECRET_KEY="bench-secret-" + os.urandom(8).hex(), FLASK_DEBUG="0",
                        # Every simulated reader connects from 127.0.0.1: lift the per-address limits.
                        MAX_CONNECTIONS_PER_ADDRESS="100000", CONNECTS_PER_ADDRESS_PER_MINUTE="1000000",
                        JOINS_PER_ADDRESS_PER_MINUTE="1000000")
        self.env.pop("SOCKETIO_MESSAGE_QUEUE", None)
        self.log = open(Path(self.tmp) / "server.log", "w")
        self.base = f"http://127.0.0.1:{self.port}"
        self.spawn()
        out = subprocess.run([str(FLASK), "--app", "app", "token", "create", "bench"], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, check=True).stdout
        self.token = out.strip().splitlines()[-1]
        _, created = post_json(self.base + "/api/stories", {"title": "Bench story", "slug": "bench"}, self.token)
        self.slug, self.rev = created["story"]["slug"], created["story"]["rev"]

    def spawn(self):
        """The production start command on the same port and database."""
        self.proc = subprocess.Popen([str(PY), "app.py", "--host", "127.0.0.1", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        wait_http(self.base + "/api/stories", self.proc)

    def publish(self, seq):
        return post_json(f"{self.base}/api/stories/{self.slug}/entries",
                         {"headline": f"bench #{seq}", "body": f"Bench update number **{seq}**. " + "x" * 200},
                         self.token)

    def counters(self):
        """The restarted process's joins, joins answered from memory, and SQL statements since it started."""
        text = urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()
        found = dict(re.findall(r"^(tracker_(?:joins|joins_from_memory|database_queries)_total) (\S+)$", text,
                                re.MULTILINE))
        return {key[len("tracker_"):-len("_total")]: int(float(value)) for key, value in found.items()}

    def readers_tick(self):
        """Wait for the reader-count tick that tells the readers their count: the first after they
        all joined (later ones find it unchanged and send nothing). What it cost (ms: count, one
        readers event per story to every reader) and the readers it counted; None if none of the
        next two ticks told them (a tick between the last join and this call already had)."""
        told = 'tracker_broadcasts_total{kind="readers"}'

        def sample():
            text = urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()
            found = {name: float(value) for name, value in re.findall(
                r"^(tracker_readers(?:_tick_seconds_count|_tick_seconds_sum)?"
                r'|tracker_broadcasts_total\{kind="readers"\}) (\S+)$', text, re.MULTILINE)}
            return {told: 0.0, **found}
        before, ticks, deadline = sample(), 0, time.time() + 60
        while ticks < 2 and time.time() < deadline:
            time.sleep(0.25)
            after = sample()
            if after["tracker_readers_tick_seconds_count"] == before["tracker_readers_tick_seconds_count"]:
                continue
            ticks += 1
            if after[told] > before[told]:
                spent = after["tracker_readers_tick_seconds_sum"] - before["tracker_readers_tick_seconds_sum"]
                return {"ms": round(spent * 1000, 2), "readers": int(after["tracker_readers"])}
            before = after
        return None

    def stop(self):
        stop(self.proc)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Reference:
    name = "reference"

    def start(self):
        self.port = free_port()
        self.slug, self.rev = "bench", 0
        self.tmp = tempfile.mkdtemp(prefix="reference-bench-")
        self.log = open(Path(self.tmp) / "server.log", "w")
        self.base = f"http://127.0.0.1:{self.port}"
        self.spawn()

    def spawn(self):
        self.proc = subprocess.Popen(["node", str(BENCH / "reference" / "server.js"), "--port", str(self.port)],
                                     cwd=BENCH, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
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


def wait_ready(client):
    """The load client's READY report: every reader connected and joined (or given up on)."""
    for line in client.stdout:
        if line.startswith("READY "):
            return json.loads(line[6:])
    raise RuntimeError(f"load client exited without READY (rc={client.wait()})")


def collect(client, publish_times, timeout):
    """Ask the load client for what each reader received of the published entries: its RESULT, or None."""
    client.stdin.write("collect " + json.dumps({"publish": publish_times, "timeout": timeout}) + "\n")
    client.stdin.flush()
    for line in client.stdout:
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return None


def publish_steadily(publish, entries, rate):
    """Publish entries 1..N at `rate` a second: (when each was sent, ms, {seq: epoch ms}; each request's
    time in ms; the errors, which are reported, not fatal)."""
    publish_times, publish_http_ms, publish_errors = {}, [], []
    start = time.time() + 0.2
    for seq in range(1, entries + 1):
        delay = start + (seq - 1) / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        t = time.time() * 1000
        publish_times[seq] = t
        try:
            publish(seq)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            publish_errors.append(f"#{seq}: {exc!r}")
        publish_http_ms.append(time.time() * 1000 - t)
    return publish_times, publish_http_ms, publish_errors


def reconnect_storm(server, client, seq, readers):
    """Restart the server under N joined readers; time until each has rejoined and has entry `seq`.

    `seq` is published as soon as the new process answers, so readers that rejoin later get it
    through the join's catch-up and earlier ones get it live.
    """
    client.stdin.write("storm " + json.dumps({"seq": seq, "timeout": 60 + readers / 100}) + "\n")
    client.stdin.flush()
    started, overflows = time.time(), listen_overflows()
    stop(server.proc)
    server.spawn()
    up = time.time() - started
    server.publish(seq)
    for line in client.stdout:
        if line.startswith("STORM "):
            leave = busy_until_idle(server.proc.pid)  # the load client ends every connection at once now
            counted = server.counters() if hasattr(server, "counters") else {}
            after = listen_overflows()
            dropped = None if overflows is None or after is None else after - overflows
            return {**json.loads(line[6:]), "server_up_s": round(up, 3), "listen_overflows": dropped,
                    "leave_cpu_s": leave, **counted}
    raise RuntimeError("load client exited without STORM")


def run_one(server_cls, readers, entries, rate, concurrency, profile=None, storm=True):
    server = server_cls()
    client = None
    spy = None
    try:
        server.start()
        pid = server.proc.pid
        time.sleep(1.0)
        idle = rss_kb(pid)
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        if profile and server.name == "tracker":
            spy = profile_phase(pid, profile, "connect")
        client = subprocess.Popen(["node", str(BENCH / "loadclient.js"), "--url", url, "--readers", str(readers),
                                   "--story", server.slug, "--since", str(server.rev),
                                   "--concurrency", str(concurrency),
                                   "--connect-timeout", str(60 + readers / 50)],
                                  cwd=BENCH, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  preexec_fn=raise_nofile)
        cpu_before_connect = cpu_s(pid)
        ready = wait_ready(client)
        cpu_connect = cpu_s(pid) - cpu_before_connect
        readers_tick = server.readers_tick() if hasattr(server, "readers_tick") else None
        time.sleep(1.0)
        loaded = rss_kb(pid)
        cpu0 = cpu_s(pid)
        if spy:
            stop_profile(spy)
            spy = profile_phase(pid, profile, "publish")
        publish_times, publish_http_ms, publish_errors = publish_steadily(server.publish, entries, rate)
        result = collect(client, publish_times, 30 + readers / 500)
        cpu_publish = cpu_s(pid) - cpu0
        stop_profile(spy)
        spy = None
        if result is None:
            raise RuntimeError("load client exited without RESULT")
        alive, peak_kb = server.proc.poll() is None, rss_kb(pid)["VmHWM"]
        per_entry = result.pop("per_entry", None)
        if storm:
            restart = reconnect_storm(server, client, entries + 1, readers)
        else:
            restart = None
            client.stdin.write("quit\n")
            client.stdin.flush()
        client.wait(10)
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
            "rss_idle_kb": idle["VmRSS"], "rss_loaded_kb": loaded["VmRSS"], "rss_peak_kb": peak_kb,
            "rss_per_conn_kb": round((loaded["VmRSS"] - idle["VmRSS"]) / max(1, ready["joined"]), 2),
            "server_cpu_publish_s": round(cpu_publish, 3),
            "cpu_us_per_delivery": round(cpu_publish * 1e6 / max(1, result["received"]), 2),
            "server_alive": alive, "per_entry": per_entry, "storm": restart, "readers_tick": readers_tick,
        }
    finally:
        stop_profile(spy)
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
    ("viewer count tick (ms)", lambda r: f"{r['readers_tick']['ms']:.1f}" if r.get("readers_tick") else "-"),
    ("restart: server up (s)", lambda r: restart_s(r, "server_up_s", 1000)),
    ("restart: all caught up (s)", lambda r: restart_s(r, "caught_up_all_ms")),
    ("restart: caught up", lambda r: f"{r['storm']['caught_up']}/{r['joined']}" if r["storm"] else "-"),
    ("restart: joins from memory", lambda r: f"{get(r, ('storm', 'joins_from_memory'))}/{get(r, ('storm', 'joins'))}"
     if get(r, ("storm", "joins")) is not None else "-"),
    ("restart: SQL statements", lambda r: fmt_count(get(r, ("storm", "database_queries")))),
    ("restart: listen drops", lambda r: fmt_count(get(r, ("storm", "listen_overflows")))),
    ("all leave: server CPU (s)", lambda r: restart_s(r, "leave_cpu_s", 1000)),
]


def restart_s(r, key, scale=1):
    """A restart figure in seconds (`scale` 1000 for one already in seconds), "-" without a restart."""
    value = get(r, ("storm", key))
    return "-" if value is None else f"{value * scale / 1000:.2f}"
RATIO = {"connect+join all (s)": "connect_all_s", "latency p50 (ms)": ("latency_ms", "p50"),
         "latency p99 (ms)": ("latency_ms", "p99"), "latency max (ms)": ("latency_ms", "max"),
         "RSS/conn (KB)": "rss_per_conn_kb", "CPU/delivery (us)": "cpu_us_per_delivery",
         "CPU connect phase (s)": "server_cpu_connect_s", "restart: all caught up (s)": ("storm", "caught_up_all_ms"),
         "all leave: server CPU (s)": ("storm", "leave_cpu_s")}


def fmt_count(v):
    return "-" if v is None else str(v)


def fmt(v):
    return "-" if v is None else f"{v:.1f}"


def get(r, key):
    return (r[key[0]] or {}).get(key[1]) if isinstance(key, tuple) else r[key]


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


def get_timed(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return (time.perf_counter() - started) * 1000, len(body)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def server_side(entries, writers, repeats=20):
    """Write throughput, page render with `entries` entries, and catching up 500 behind (join and pages)."""
    import websocket  # websocket-client: a dev requirement, installed by `make bench`

    server = Tracker()
    try:
        server.start()
        errors = []

        def write(worker):
            for seq in range(worker, entries, writers):
                try:
                    server.publish(seq)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(repr(exc))

        started = time.perf_counter()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        write_s = time.perf_counter() - started
        page = [get_timed(f"{server.base}/stories/{server.slug}") for _ in range(repeats)]
        api = [get_timed(f"{server.base}/api/stories/{server.slug}/entries") for _ in range(repeats)]
        rev = json.loads(urllib.request.urlopen(f"{server.base}/api/stories/{server.slug}").read())["story"]["rev"]
        joins, sizes = [], []
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket", timeout=30)
        ws.recv()
        ws.send("40")
        ws.recv()
        for n in range(repeats):
            # The join's ack holds the first page; the reader fetches the rest over HTTP (README, protocol).
            started = time.perf_counter()
            ws.send(f'42{n}["join",{{"story":"{server.slug}","since":{rev - 500}}}]')
            while not (message := ws.recv()).startswith(f"43{n}"):
                pass
            size, part = len(message.encode()), json.loads(message[2 + len(str(n)):])[0]
            caught = len(part["entries"])
            while part.get("next_after_rev") is not None:
                body = urllib.request.urlopen(f"{server.base}/api/stories/{server.slug}/entries"
                                              f"?limit=100&after_rev={part['next_after_rev']}").read()
                size, part = size + len(body), json.loads(body)
                caught += len(part["entries"])
            joins.append((time.perf_counter() - started) * 1000)
            sizes.append(size)
            assert caught == 500
        ws.close()
        return {"entries": entries, "writers": writers, "write_errors": len(errors),
                "writes_per_s": round((entries - len(errors)) / write_s, 1),
                "page_ms": round(median([t for t, _ in page]), 1), "page_kb": round(page[0][1] / 1024, 1),
                "api_page_ms": round(median([t for t, _ in api]), 1),
                "catchup_500_ms": round(median(joins), 1), "catchup_500_kb": round(median(sizes) / 1024, 1)}
    finally:
        server.stop()


def print_server_side(r):
    print(f"\n== Server side (Tracker alone, SQLite): {r['entries']} entries ==")
    print(f"{'write path (API, ' + str(r['writers']) + ' writers)':40}{r['writes_per_s']:>10} entries/s"
          f"  ({r['write_errors']} errors)")
    print(f"{'story page render, ' + str(r['entries']) + ' entries':40}{r['page_ms']:>10} ms  ({r['page_kb']} KB)")
    print(f"{'JSON entries page':40}{r['api_page_ms']:>10} ms")
    print(f"{'catch-up, 500 revisions behind':40}{r['catchup_500_ms']:>10} ms  ({r['catchup_500_kb']} KB in all)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readers", default="1000,5000,10000")
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="entries per second")
    p.add_argument("--concurrency", type=int, default=200, help="connections in flight while connecting")
    p.add_argument("--smoke", action="store_true", help="50 readers, 5 entries, no reference")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-storm", action="store_true", help="skip the restart (reconnect storm) phase")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--profile", help="record py-spy profiles of Tracker's connect and publish phases")
    p.add_argument("--server-entries", type=int, default=5000,
                   help="entries for the write, render and catch-up measurements (0: skip them)")
    p.add_argument("--writers", type=int, default=4, help="concurrent API writers for the write path")
    p.add_argument("--async-mode", choices=("eventlet", "gevent"), default=os.environ.get("ASYNC_MODE") or "eventlet",
                   help="Tracker's server mode (ASYNC_MODE for app.py; default eventlet)")
    a = p.parse_args()
    os.environ["ASYNC_MODE"] = a.async_mode  # Tracker's server processes take their environment from here
    print(f"Tracker in ASYNC_MODE={a.async_mode}")
    if a.smoke:
        a.readers, a.entries, a.no_reference, a.server_entries = "50", 5, True, 600
    if not (BENCH / "node_modules" / "ws").exists():
        sys.exit("run `npm ci` in bench/ first")
    raise_nofile()
    started = time.time()
    results, ok = [], True
    for n in [int(x) for x in a.readers.split(",") if x.strip()]:
        ours = run_one(Tracker, n, a.entries, a.rate, a.concurrency, a.profile, not a.no_storm)
        ref = None if a.no_reference else run_one(Reference, n, a.entries, a.rate, a.concurrency, storm=not a.no_storm)
        print_table(n, ours, ref)
        results += [r for r in (ours, ref) if r]
        ok = ok and all(r["lost"] == 0 and r["connect_failed"] == 0
                        and (r["storm"] is None or r["storm"]["caught_up"] == r["joined"]) for r in (ours, ref) if r)
    side = server_side(a.server_entries, a.writers) if a.server_entries else None
    if side:
        print_server_side(side)
        ok = ok and side["write_errors"] == 0
    verdict = ("OK: no lost deliveries, every reader caught up" if ok
               else "FAILED: losses, connect failures or readers not caught up")
    print(f"\ntotal {time.time() - started:.1f} s; {verdict}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)  # bench/results/ is not in git
        Path(a.json).write_text(json.dumps({"fanout": results, "server_side": side}, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
