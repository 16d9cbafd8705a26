"""Respond's latency/CPU benchmark: a fast fake upstream on loopback, the same request mix sent directly and
through respond, added latency and respond's CPU per request for each cell. See bench/README.md.

    .venv/bin/python bench/run.py                      # every cell, c=1,32,256 (a few minutes)
    .venv/bin/python bench/run.py --quick              # fewer requests per cell
    .venv/bin/python bench/run.py --cells resp-sse-256,chat-sse-256 --concurrency 32
    .venv/bin/python bench/run.py --profile /tmp/prof  # also py-spy respond during each measured run
    .venv/bin/python bench/run.py --respond-env KEY=VALUE   # extra environment for respond

Processes: the fake upstream (bench/fake_upstream.py), respond (`respond serve`, one uvicorn worker) and one
load generator per run (bench/loadgen.py). On a machine with 2+ cores respond is pinned to core 0 and the
upstream and the generator share core 1 (`--no-pin` to let the scheduler place them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROMPT = "Write a short poem about the sea."


@dataclass(frozen=True)
class Workload:
    name: str
    api: str  # "responses" | "chat"
    stream: bool
    tokens: int
    cpu_target_ms: float | None  # respond CPU-ms per request, from the issue

    def respond_request(self, store: bool = True) -> tuple[str, dict[str, Any]]:
        if self.api == "responses":
            body = {"model": "bench/fake", "input": PROMPT, "max_output_tokens": self.tokens, "stream": self.stream}
            if not store:
                body["store"] = False
            return "/v1/responses", body
        return "/v1/chat/completions", self._chat_body("bench/fake")

    def direct_request(self) -> tuple[str, dict[str, Any]]:
        """The same logical request straight to the upstream: what respond sends it, streamed or not as the
        client asked."""
        return "/v1/chat/completions", self._chat_body("fake")

    def _chat_body(self, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                                "max_tokens": self.tokens, "stream": self.stream}
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        return body


WORKLOADS = {w.name: w for w in [
    Workload("resp-json-16", "responses", False, 16, 2.5),
    Workload("resp-json-256", "responses", False, 256, None),
    Workload("resp-sse-16", "responses", True, 16, None),
    Workload("resp-sse-256", "responses", True, 256, 8.0),
    Workload("chat-sse-256", "chat", True, 256, 4.0),
]}
LATENCY_TARGET_MS = 3.0  # p50 added latency at concurrency 1
REQUESTS = {1: 200, 32: 1000, 256: 1000}
QUICK_REQUESTS = {1: 50, 32: 200, 256: 512}


# -- processes ----------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpus: set[int] | None):
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_upstream(cpus: set[int] | None, interval_ms: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_upstream.py"), "--port", "0",
                             "--token-interval-ms", str(interval_ms)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=pinned(cpus))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"fake upstream did not start: {line!r}")
    return proc, int(line.split()[1])


def start_respond(cpus: set[int] | None, upstream_port: int, workdir: Path,
                  extra_env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / "respond.yaml"
    config.write_text(f"""\
host: 127.0.0.1
port: {port}
data_dir: {workdir / "data"}
log_level: warning
default_model: bench/fake
providers:
  - id: bench
    type: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key: bench
    models: [fake]
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPOND_", "OPENAI_"))}
    env.update(extra_env)
    log = open(workdir / "respond.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(config),
                             "--port", str(port), "--log-format", "text"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=pinned(cpus))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"respond exited ({proc.returncode}):\n{(workdir / 'respond.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("respond did not become healthy within 60 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on; comm may contain spaces


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of `pid` (all its threads) and its descendants, reaped children included."""
    user = system = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        fields = _stat_fields(p)
        if fields is None:
            continue
        # fields[11..14] are utime, stime, cutime, cstime (stat fields 14-17)
        user += int(fields[11]) + int(fields[13])
        system += int(fields[12]) + int(fields[14])
        stack += _children(p)
    return user / CLK_TCK, system / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / CLK_TCK


# -- one measured run ---------------------------------------------------------------------------------------

@dataclass
class Run:
    totals: list[float]
    firsts: list[float]
    errors: int
    error_samples: list[str]
    wall: float
    gen_cpu: float  # the load generator's CPU seconds during the measured requests
    server_user: float | None  # respond's CPU seconds (respond runs only)
    server_system: float | None
    other_cpu: float  # CPU seconds spent by everything else on the machine (noise)
    window: float  # seconds between the CPU snapshots

    @property
    def server_cpu(self) -> float | None:
        return None if self.server_user is None or self.server_system is None else self.server_user + self.server_system


def run_load(port: int, path: str, body: dict[str, Any], api: str, workload: Workload, concurrency: int,
             requests: int, gen_cpus: set[int] | None, server_pid: int | None, upstream_pid: int,
             profile_out: Path | None) -> Run:
    spec = {"host": "127.0.0.1", "port": port, "path": path, "body": body, "api": api,
            "stream": workload.stream, "tokens": workload.tokens, "concurrency": concurrency,
            "requests": requests, "warmup": max(20, concurrency)}
    env = dict(os.environ)
    if gen_cpus:
        env["BENCH_LOADGEN_CPUS"] = ",".join(map(str, sorted(gen_cpus)))
    proc = subprocess.Popen([sys.executable, str(HERE / "loadgen.py"), json.dumps(spec)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    ours = [proc.pid, upstream_pid] + ([server_pid] if server_pid else [])
    spy = None
    try:
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"load generator failed during warm-up: {line!r}")
        time.sleep(0.3)  # let the warm-up's tail (storage writes, connection setup) settle
        if profile_out is not None and server_pid is not None:
            spy = start_py_spy(server_pid, profile_out, gen_cpus)
        before = {pid: tree_cpu(pid) for pid in ours}
        busy0 = machine_busy()
        t0 = time.perf_counter()
        proc.stdin.write("\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        time.sleep(0.05)
        after = {pid: tree_cpu(pid) for pid in ours}
        busy1 = machine_busy()
        window = time.perf_counter() - t0
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        proc.stdin.close()
        proc.wait(30)
    if not line:
        raise RuntimeError("load generator died during the measured run")
    out = json.loads(line)
    delta = {pid: (after[pid][0] - before[pid][0], after[pid][1] - before[pid][1]) for pid in ours}
    other = (busy1 - busy0) - sum(u + s for u, s in delta.values())
    server = delta.get(server_pid) if server_pid else None
    return Run(totals=out["totals"], firsts=out["firsts"], errors=out["errors"],
               error_samples=out["error_samples"], wall=out["wall"], gen_cpu=out["cpu"],
               server_user=server[0] if server else None, server_system=server[1] if server else None,
               other_cpu=max(0.0, other), window=window)


def start_py_spy(pid: int, out: Path, cpus: set[int] | None) -> subprocess.Popen:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--nonblocking", "--threads",
                             "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(cpus))
    time.sleep(0.5)  # attached
    return proc


# -- statistics and the table -------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.2f}"


@dataclass
class Cell:
    workload: Workload
    concurrency: int
    direct: Run
    respond: Run

    @property
    def requests(self) -> int:
        return len(self.respond.totals) + self.respond.errors

    @property
    def cpu_ms(self) -> float | None:
        if self.respond.server_cpu is None or not self.requests:
            return None
        return self.respond.server_cpu * 1000 / self.requests

    def added(self, q: float) -> float | None:
        a, b = pct(self.respond.totals, q), pct(self.direct.totals, q)
        return None if a is None or b is None else a - b

    def checks(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        w = self.workload
        if w.cpu_target_ms is not None and self.cpu_ms is not None:
            out.append((f"CPU<={w.cpu_target_ms:g}", self.cpu_ms <= w.cpu_target_ms))
        if self.concurrency == 1:
            added = self.added(0.5)
            out.append((f"p50+<{LATENCY_TARGET_MS:g}ms", added is not None and added * 1000 < LATENCY_TARGET_MS))
        out.append(("0 err", self.direct.errors == 0 and self.respond.errors == 0))
        return out


HEADER = ("| cell | c | n | err | direct p50 / p99 ms | respond p50 / p99 ms | added p50 / p99 ms "
          "| TTFT direct / respond p50 ms | respond rps | respond CPU-ms/req (user+sys) | gen / other CPU % "
          "| target | pass |")
RULE = "|" + "|".join("---" for _ in range(HEADER.count("|") - 1)) + "|"


def row(cell: Cell) -> str:
    d, r = cell.direct, cell.respond
    checks = cell.checks()
    verdict = "PASS" if all(ok for _, ok in checks) else "FAIL: " + ", ".join(n for n, ok in checks if not ok)
    cpu = "-"
    if cell.cpu_ms is not None and r.server_user is not None and r.server_system is not None:
        cpu = (f"**{cell.cpu_ms:.2f}** ({r.server_user * 1000 / cell.requests:.2f}"
               f"+{r.server_system * 1000 / cell.requests:.2f})")
    gen = f"{100 * r.gen_cpu / r.wall:.0f} / {100 * r.other_cpu / r.window:.0f}" if r.wall and r.window else "-"
    rps = f"{len(r.totals) / r.wall:.0f}" if r.wall else "-"
    ttft = "-" if not cell.workload.stream else f"{ms(pct(d.firsts, 0.5))} / {ms(pct(r.firsts, 0.5))}"
    return (f"| {cell.workload.name} | {cell.concurrency} | {cell.requests} | {d.errors}/{r.errors} "
            f"| {ms(pct(d.totals, 0.5))} / {ms(pct(d.totals, 0.99))} "
            f"| {ms(pct(r.totals, 0.5))} / {ms(pct(r.totals, 0.99))} "
            f"| {ms(cell.added(0.5))} / {ms(cell.added(0.99))} | {ttft} | {rps} | {cpu} | {gen} "
            f"| {', '.join(n for n, _ in checks)} | {verdict} |")


def environment(pinned_: bool, interval_ms: float, store: bool = True) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    placement = ("respond pinned to core 0; upstream + load generator pinned to core 1" if pinned_
                 else "no pinning (all processes share every core)")
    pacing = "tokens back to back" if interval_ms <= 0 else f"tokens paced {interval_ms:g} ms apart"
    return (f"{os.cpu_count()} x {cpu}, Linux {platform.release()}, Python {platform.python_version()}; "
            f"{placement}; one uvicorn worker; SQLite storage ({'store=true' if store else 'store=false'}); upstream: {pacing}")


# -- main ---------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Respond latency/CPU benchmark against a fast fake upstream.")
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell (~1 min)")
    parser.add_argument("--cells", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})")
    parser.add_argument("--concurrency", default="1,32,256", help="comma-separated (default 1,32,256)")
    parser.add_argument("--requests", type=int, help="measured requests per cell (default 200 at c=1, "
                                                     "1000 otherwise; --quick 50/200/512)")
    parser.add_argument("--no-pin", action="store_true", help="don't pin processes to cores")
    parser.add_argument("--token-interval-ms", type=float, default=0.0,
                        help="upstream pacing between streamed tokens (default 0: back to back)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record respond with py-spy (raw collapsed stacks) during each measured run")
    parser.add_argument("--no-store", action="store_true", help="send store=false with /v1/responses requests")
    parser.add_argument("--respond-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the respond process (repeatable), e.g. PYTHONPATH=DIR with a "
                             "sitecustomize.py for A/B experiments")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the raw results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.cells.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown cells {unknown}; choose from {list(WORKLOADS)}", file=sys.stderr)
        return 2
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    counts = QUICK_REQUESTS if args.quick else REQUESTS
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_cpus, side_cpus = ({0}, {1}) if pin else (None, None)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="respond-bench-") as tmp:
        workdir = Path(tmp)
        upstream, upstream_port = start_upstream(side_cpus, args.token_interval_ms)
        respond = None
        try:
            extra_env = dict(kv.split("=", 1) for kv in args.respond_env)
            respond, respond_port = start_respond(server_cpus, upstream_port, workdir, extra_env)
            print(f"# {environment(pin, args.token_interval_ms, not args.no_store)}", file=sys.stderr)
            for name in names:
                w = WORKLOADS[name]
                for c in levels:
                    n = args.requests or counts.get(c, 1000)
                    t0 = time.monotonic()
                    dpath, dbody = w.direct_request()
                    direct = run_load(upstream_port, dpath, dbody, "chat", w, c, n, side_cpus, None, upstream.pid, None)
                    rpath, rbody = w.respond_request(store=not args.no_store)
                    prof = args.profile / f"{name}-c{c}.txt" if args.profile else None
                    via = run_load(respond_port, rpath, rbody, w.api, w, c, n, side_cpus, respond.pid, upstream.pid,
                                   prof)
                    cell = Cell(w, c, direct, via)
                    cells.append(cell)
                    print(f"# {name} c={c}: {time.monotonic() - t0:.1f}s  {row(cell)}", file=sys.stderr)
                    for sample in direct.error_samples + via.error_samples:
                        print(f"#   error: {sample}", file=sys.stderr)
        finally:
            if respond is not None:
                stop(respond)
            stop(upstream)
            log = workdir / "respond.log"
            if log.exists() and log.stat().st_size:
                print("# respond log:\n" + log.read_text()[-4000:], file=sys.stderr)

    print(f"Environment: {environment(pin, args.token_interval_ms, not args.no_store)}\n")
    print(HEADER)
    print(RULE)
    for cell in cells:
        print(row(cell))
    if args.json:
        args.json.write_text(json.dumps([{
            "cell": c.workload.name, "concurrency": c.concurrency, "requests": c.requests,
            "cpu_ms_per_request": c.cpu_ms, "checks": c.checks(),
            "direct": vars(c.direct), "respond": vars(c.respond)} for c in cells]))
    failed = [c for c in cells if not all(ok for _, ok in c.checks())]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
