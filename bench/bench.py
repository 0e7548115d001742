"""Direct-vs-gateway benchmark of azproxy: runs every measurement and prints one Markdown table.

Started by `bench/run.sh` (which installs nginx and wrk and raises the fd limit); see
`bench/README.md` for what each row means. Layout on a 2-core machine:

    core 0: the gateway (`python -m azproxy`), alone
    core 1: nginx (non-streaming upstream), bench/sse_upstream.py (streaming upstream),
            wrk and bench/stream_load.py (load generators), and this script (mostly asleep)

Every measurement is made directly against the upstream and through the gateway in the same
run, one right after the other, and shown side by side with their difference or ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import queue
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
GATEWAY_CORE = "0"
LOAD_CORE = "1"
BODY = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
API_VERSION = "2024-10-21"
DIRECT_PATH = f"/openai/deployments/gpt-4o/chat/completions?api-version={API_VERSION}"
GATEWAY_PATH = "/v1/chat/completions"
BUSY = 0.10  # a core busier than this before the run means other work is running
TIMES = "\u00d7"  # the multiplication sign, for ratios and stream counts
UPLOAD_PENDING = "pending: needs /v1/audio/transcriptions (surface issue)"
UPLOAD_BYTES = 25_000_000
UPLOAD_PATH = "/v1/audio/transcriptions"
DIRECT_UPLOAD_PATH = f"/openai/deployments/whisper/audio/transcriptions?api-version={API_VERSION}"

# What nginx answers for every chat completion: an Azure-shaped body, alphabetical keys, with
# content-filter annotations, as Azure sends it (no `$` or `'`: nginx would interpret them).
AZURE_CHAT_BODY = json.dumps(
    {
        "choices": [
            {
                "content_filter_results": {
                    c: {"filtered": False, "severity": "safe"}
                    for c in ("hate", "self_harm", "sexual", "violence")
                },
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {
                    "content": "Hello! How can I assist you today?",
                    "refusal": None,
                    "role": "assistant",
                },
            }
        ],
        "created": 1732252800,
        "id": "chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012",
        "model": "gpt-4o-2024-11-20",
        "object": "chat.completion",
        "prompt_filter_results": [
            {
                "content_filter_results": {
                    "hate": {"filtered": False, "severity": "safe"},
                    "jailbreak": {"detected": False, "filtered": False},
                    "self_harm": {"filtered": False, "severity": "safe"},
                    "sexual": {"filtered": False, "severity": "safe"},
                    "violence": {"filtered": False, "severity": "safe"},
                },
                "prompt_index": 0,
            }
        ],
        "system_fingerprint": "fp_ee1d74bde0",
        "usage": {"completion_tokens": 9, "prompt_tokens": 8, "total_tokens": 17},
    },
    separators=(",", ":"),
)

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 16384;
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/openai/deployments/[^/]+/chat/completions$ {{
            default_type application/json;
            add_header apim-request-id 6a1c3b0e-5f1e-4a4e-9d1b-2f1c0e9a7b11 always;
            add_header x-request-id 0c2d6f7e-3b5a-4c1d-8e9f-a1b2c3d4e5f6 always;
            add_header x-ms-region "Sweden Central" always;
            add_header x-ratelimit-remaining-requests 9999 always;
            add_header x-ratelimit-remaining-tokens 9999000 always;
            add_header x-content-type-options nosniff always;
            return 200 '{body}';
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""

# A reference proxy with next to no cost of its own, in the gateway's place: what the layout
# itself (two cores, loopback, cross-core wake-ups) adds to any proxy on this machine.
NGINX_PROXY_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/proxy.pid;
error_log {tmp}/proxy-error.log warn;
events {{
    worker_connections 16384;
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {tmp}/proxy-body;
    proxy_temp_path {tmp}/proxy-proxy;
    fastcgi_temp_path {tmp}/proxy-fastcgi;
    uwsgi_temp_path {tmp}/proxy-uwsgi;
    scgi_temp_path {tmp}/proxy-scgi;
    keepalive_requests 10000000;
    upstream azure {{
        server 127.0.0.1:{upstream};
        keepalive 256;
        keepalive_requests 10000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://azure;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer k"

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f "
        .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """A step failed; the message says which."""


# --- processes --------------------------------------------------------------------------


class Processes:
    """Every process the bench starts: own process group, pid recorded for run.sh's trap."""

    def __init__(self, pids_dir: Path | None) -> None:
        self.pids_dir = pids_dir
        self.running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}

    def start(
        self,
        name: str,
        cmd: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self.running[proc.pid] = (name, proc)
        if self.pids_dir is not None:
            (self.pids_dir / f"{name}-{proc.pid}").write_text(str(proc.pid))
        return proc

    def forget(self, proc: subprocess.Popen[bytes]) -> None:
        name, _ = self.running.pop(proc.pid, ("", proc))
        if self.pids_dir is not None:
            (self.pids_dir / f"{name}-{proc.pid}").unlink(missing_ok=True)

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # Whatever the leader left in its group (nginx workers) goes with it.
        _signal_group(proc.pid, signal.SIGKILL)
        self.forget(proc)

    def stop_all(self) -> None:
        for _, proc in list(self.running.values()):
            try:
                self.stop(proc, timeout=5.0)
            except Exception as exc:  # clean-up must go on for the others
                log(f"could not stop pid {proc.pid}: {exc}")


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on port {port} within {timeout:g} s")


def http_call(
    url: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body.encode() if body is not None else None, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def multipart_upload(url: str, size: int, *, model_first: bool) -> tuple[int, float]:
    """POST a transcription upload of `size` file bytes, streamed from a generator, with the
    `model` field before or after the file (openai-python / openai-node order); return
    (status, seconds)."""
    boundary = "azproxybench7MA4YWxkTrZu0gW"
    model = f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
    file_head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="speech.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    )
    head = (model + file_head if model_first else file_head).encode()
    tail = f"\r\n{model}--{boundary}--\r\n" if not model_first else f"\r\n--{boundary}--\r\n"
    piece = bytes(64 * 1024)

    def body() -> Iterator[bytes]:
        yield head
        left = size
        while left > 0:
            yield piece[: min(left, len(piece))]
            left -= len(piece)
        yield tail.encode()

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail.encode())),
        "Authorization": "Bearer k",
    }
    started = time.perf_counter()
    try:
        conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""),
                     body=body(), headers=headers)  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


# --- /proc --------------------------------------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole process (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_times() -> dict[str, tuple[int, int]]:
    """(busy, total) clock ticks of each core, from /proc/stat."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                ticks = [int(v) for v in values]
                idle = ticks[3] + ticks[4]  # idle + iowait
                times[name] = (sum(ticks) - idle, sum(ticks))
    return times


def steal_ticks(core: str) -> int:
    """Clock ticks the hypervisor gave `core` (e.g. "cpu0") to someone else, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == core and len(fields) > 8:
                return int(fields[8])
    return 0


def core_busy(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    """Per core, the share of the interval it was busy (0..1)."""
    busy = {}
    for name, (work, total) in after.items():
        work0, total0 = before.get(name, (0, 0))
        busy[name] = (work - work0) / max(1, total - total0)
    return busy


def cpus_allowed(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return "?"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "cpu model", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- the pieces ---------------------------------------------------------------------------


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    status_errors: int
    median_rps: float | None = None  # set on a median of several runs

    @property
    def rps(self) -> float:
        if self.median_rps is not None:
            return self.median_rps
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def median_run(runs: list[WrkResult]) -> WrkResult:
    """One result whose every figure is the median of `runs` (the errors are summed)."""
    return WrkResult(
        requests=sum(w.requests for w in runs),
        seconds=sum(w.seconds for w in runs),
        p50_ms=statistics.median(w.p50_ms for w in runs),
        p99_ms=statistics.median(w.p99_ms for w in runs),
        socket_errors=sum(w.socket_errors for w in runs),
        status_errors=sum(w.status_errors for w in runs),
        median_rps=statistics.median(w.rps for w in runs),
    )


@dataclass
class StreamRun:
    summary: dict[str, Any]
    rss_samples: list[tuple[float, int]] = field(default_factory=list)
    all_open_at: float | None = None
    first_done_at: float | None = None
    core_busy: dict[str, float] = field(default_factory=dict)
    cpu_s: float | None = None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = sys.executable
        pids_dir = os.environ.get("BENCH_PIDS_DIR")
        self.procs = Processes(Path(pids_dir) if pids_dir else None)
        self.tmp = Path(tempfile.mkdtemp(prefix="azproxy-bench-"))
        self.nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        self.wrk_bin = shutil.which("wrk") or "wrk"
        self.wrk_script = self.tmp / "post.lua"
        self.wrk_script.write_text(WRK_SCRIPT.format(body=BODY))
        self.nginx_port = 0
        self.sse_port = 0

    def close(self) -> None:
        self.procs.stop_all()
        if self.args.keep_tmp:
            log(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # upstreams

    def start_nginx(self) -> None:
        self.nginx_port = free_port()
        conf = self.tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=self.tmp, port=self.nginx_port, body=AZURE_CHAT_BODY))
        proc = self.procs.start(
            "nginx",
            [
                "taskset", "-c", LOAD_CORE, self.nginx_bin,
                "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "nginx-error.log"),
            ],
            stderr=open(self.tmp / "nginx-stderr.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        wait_port(self.nginx_port, proc, "nginx")
        status, body = http_call(f"http://127.0.0.1:{self.nginx_port}{DIRECT_PATH}", BODY)
        if status != 200 or b"chat.completion" not in body:
            raise BenchError(f"nginx answered {status}: {body[:200]!r}")

    def start_reference_proxy(self) -> tuple[subprocess.Popen[bytes], int]:
        """nginx as a plain reverse proxy to the nginx upstream, on the gateway's core."""
        port = free_port()
        conf = self.tmp / "proxy.conf"
        conf.write_text(NGINX_PROXY_CONF.format(tmp=self.tmp, port=port, upstream=self.nginx_port))
        proc = self.procs.start(
            "nginx-proxy",
            [
                "taskset", "-c", GATEWAY_CORE, self.nginx_bin,
                "-p", str(self.tmp), "-c", str(conf), "-e", str(self.tmp / "proxy-error.log"),
            ],
        )  # fmt: skip
        wait_port(port, proc, "nginx reference proxy")
        return proc, port

    def start_sse(self) -> None:
        self.sse_port = free_port()
        proc = self.procs.start(
            "sse-upstream",
            [
                "taskset", "-c", LOAD_CORE, self.python, str(HERE / "sse_upstream.py"),
                "--port", str(self.sse_port),
            ],
            stderr=open(self.tmp / "sse-upstream.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        wait_port(self.sse_port, proc, "bench/sse_upstream.py")

    # the gateway

    def start_gateway(
        self,
        name: str,
        upstream_port: int,
        *,
        access_log: bool = True,
        pool_size: int = 0,
        stream_mode: str = "",
    ) -> Gateway:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI", "OPENAI_"))}
        env.update(
            AZURE_OPENAI_ENDPOINT=f"http://127.0.0.1:{upstream_port}",
            AZURE_OPENAI_PROXY_ADDRESS=f"127.0.0.1:{port}",
            AZURE_OPENAI_PROXY_LOG_LEVEL="INFO",
            AZURE_OPENAI_PROXY_ACCESS_LOG="true" if access_log else "false",
            # Only bounds how long a stop may take at the end of a section.
            AZURE_OPENAI_PROXY_SHUTDOWN_TIMEOUT="3",
        )
        if pool_size:
            env["AZURE_OPENAI_PROXY_POOL_SIZE"] = str(pool_size)
        if stream_mode:
            env["AZURE_OPENAI_STREAM_MODE"] = stream_mode
        log_path = self.tmp / f"gateway-{name}.log"
        # cwd is the temp dir so that no `.env` of the working tree is read.
        proc = self.procs.start(
            f"gateway-{name}",
            ["taskset", "-c", GATEWAY_CORE, self.python, "-m", "azproxy"],
            env=env,
            cwd=self.tmp,
            stdout=open(log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        gateway = Gateway(proc, port, log_path)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BenchError(f"gateway exited with {proc.returncode} at start:\n{tail}")
            try:
                if http_call(gateway.url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("gateway did not answer /health within 30 s")
            time.sleep(0.05)
        if cpus_allowed(gateway.pid) != GATEWAY_CORE:
            raise BenchError(f"gateway pid {gateway.pid} is not pinned to core {GATEWAY_CORE}")
        return gateway

    def stop_gateway(self, gateway: Gateway) -> None:
        self.procs.stop(gateway.proc)
        problems = [
            line
            for line in gateway.log_path.read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line or " CRITICAL " in line
        ]
        if problems:
            log(f"gateway log {gateway.log_path.name} has {len(problems)} error lines, e.g.:")
            for line in problems[:5]:
                log(f"  {line[:300]}")

    # load

    def wrk(
        self,
        url: str,
        connections: int,
        seconds: float,
        headers: dict[str, str] | None = None,
    ) -> WrkResult:
        cmd = [
            "taskset", "-c", LOAD_CORE, self.wrk_bin, "-t1", f"-c{connections}",
            f"-d{seconds:g}s", "--timeout", "5s", "--latency", "-s", str(self.wrk_script),
        ]  # fmt: skip
        for name, value in (headers or {}).items():
            cmd += ["-H", f"{name}: {value}"]
        proc = self.procs.start(
            "wrk", [*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            out, _ = proc.communicate(timeout=seconds + 60)
        finally:
            self.procs.stop(proc)
        text = out.decode(errors="replace")
        match = re.search(r"^BENCH (.*)$", text, re.MULTILINE)
        if proc.returncode != 0 or match is None:
            raise BenchError(f"wrk failed ({proc.returncode}):\n{text[-2000:]}")
        values = dict(item.split("=") for item in match.group(1).split())
        return WrkResult(
            requests=int(values["requests"]),
            seconds=int(values["duration_us"]) / 1e6,
            p50_ms=float(values["p50_us"]) / 1000,
            p99_ms=float(values["p99_us"]) / 1000,
            socket_errors=sum(int(values[k]) for k in ("connect", "read", "write", "timeout")),
            status_errors=int(values["status"]),
        )

    def streams(
        self,
        url: str,
        n: int,
        chunks: int,
        interval_ms: float,
        *,
        rounds: int = 1,
        ramp: float = 0.0,
        end_together: bool = False,
        watch_pid: int | None = None,
    ) -> StreamRun:
        """Run bench/stream_load.py; sample `watch_pid`'s RSS every 50 ms while it runs."""
        cmd = [
            "taskset", "-c", LOAD_CORE, self.python, str(HERE / "stream_load.py"), url,
            "-n", str(n), "--chunks", str(chunks), "--interval-ms", f"{interval_ms:g}",
            "--rounds", str(rounds), "--ramp", f"{ramp:g}", "--client", self.args.stream_client,
        ]  # fmt: skip
        if end_together:
            cmd.append("--end-together")
        proc = self.procs.start(
            "stream-load",
            cmd,
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "stream-load.log", "ab"),  # noqa: SIM115
        )
        lines: queue.Queue[tuple[float, str]] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.put((time.monotonic(), raw.decode(errors="replace").strip()))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        run = StreamRun(summary={})
        cores_before = core_times()
        cpu_before = cpu_seconds(watch_pid) if watch_pid is not None else 0.0
        limit = time.monotonic() + rounds * (chunks * interval_ms / 1000 + 2 * ramp + 120)
        try:
            while proc.poll() is None:
                if time.monotonic() > limit:
                    raise BenchError("stream_load.py did not finish in time")
                if watch_pid is not None:
                    try:
                        rss = proc_status_kib(watch_pid, "VmRSS")
                        run.rss_samples.append((time.monotonic(), rss))
                    except (OSError, BenchError):
                        pass
                time.sleep(0.05)
        finally:
            self.procs.stop(proc)
        run.core_busy = core_busy(cores_before, core_times())
        if watch_pid is not None:
            run.cpu_s = cpu_seconds(watch_pid) - cpu_before
        reader.join(5)
        last = ""
        while not lines.empty():
            at, line = lines.get()
            if line.startswith("ALL_OPEN") and run.all_open_at is None:
                run.all_open_at = at
            elif line.startswith("FIRST_DONE") and run.first_done_at is None:
                run.first_done_at = at
            elif line.startswith("{"):
                last = line
        if proc.returncode != 0 or not last:
            tail = (self.tmp / "stream-load.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"stream_load.py failed ({proc.returncode}):\n{tail}")
        run.summary = json.loads(last)
        return run


# --- the run ------------------------------------------------------------------------------


def measure(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    r: dict[str, Any] = {}
    secs, warm = args.duration, args.warmup
    log("starting nginx and bench/sse_upstream.py on core 1")
    bench.start_nginx()
    bench.start_sse()
    direct = f"http://127.0.0.1:{bench.nginx_port}{DIRECT_PATH}"

    log("gateway with default features (access log on, CORS on) on core 0")
    gw = bench.start_gateway("defaults", bench.nginx_port)
    time.sleep(1.0)
    r["idle_rss_kib"] = proc_status_kib(gw.pid, "VmRSS")
    r["loop"] = gateway_loop(gw.pid)
    status, body = http_call(gw.url + GATEWAY_PATH, BODY, {"Authorization": "Bearer k"})
    if status != 200 or b"chat.completion" not in body:
        raise BenchError(f"gateway answered {status}: {body[:300]!r}")
    gateway = gw.url + GATEWAY_PATH
    bench.wrk(direct, 64, warm)
    bench.wrk(gateway, 64, warm)
    # Figures on this shared machine move by a third between runs: each is measured in
    # `rounds` rounds, direct and gateway interleaved, and the median is shown.
    runs: dict[str, list[WrkResult]] = {k: [] for k in ("td", "tg", "ld", "lg", "cors")}
    cpu_us: list[float] = []
    steal: list[float] = []  # share of the gateway core's time the hypervisor took, per round
    origin = {"Origin": "https://chat.example.com"}
    for n in range(1, args.rounds + 1):
        log(f"1./2./6. round {n} of {args.rounds}: 64 connections, 1 connection, CORS")
        runs["td"].append(bench.wrk(direct, 64, secs))
        cpu_before, steal_before = cpu_seconds(gw.pid), steal_ticks("cpu" + GATEWAY_CORE)
        runs["tg"].append(bench.wrk(gateway, 64, secs))
        cpu_us.append((cpu_seconds(gw.pid) - cpu_before) * 1e6 / max(1, runs["tg"][-1].requests))
        steal.append(
            (steal_ticks("cpu" + GATEWAY_CORE) - steal_before)
            / os.sysconf("SC_CLK_TCK")
            / runs["tg"][-1].seconds
        )
        runs["ld"].append(bench.wrk(direct, 1, secs))
        runs["lg"].append(bench.wrk(gateway, 1, secs))
        runs["cors"].append(bench.wrk(gateway, 64, secs, origin))
    r["thr_direct"], r["thr_gateway"] = median_run(runs["td"]), median_run(runs["tg"])
    r["lat_direct"], r["lat_gateway"] = median_run(runs["ld"]), median_run(runs["lg"])
    r["thr_cors"] = median_run(runs["cors"])
    r["cpu_us"] = statistics.median(cpu_us)
    r["spread"] = {"rps": [w.rps for w in runs["tg"]], "cpu_us": cpu_us, "steal": steal}
    bench.stop_gateway(gw)

    log("1./2. reference: nginx as a plain reverse proxy on core 0")
    proxy, proxy_port = bench.start_reference_proxy()
    reference = f"http://127.0.0.1:{proxy_port}{DIRECT_PATH}"
    bench.wrk(reference, 64, warm)
    r["ref_thr"] = bench.wrk(reference, 64, secs)
    r["ref_lat"] = bench.wrk(reference, 1, secs)
    bench.procs.stop(proxy)

    log("6. access log off (AZURE_OPENAI_PROXY_ACCESS_LOG=false)")
    gw = bench.start_gateway("no-access-log", bench.nginx_port, access_log=False)
    bench.wrk(gw.url + GATEWAY_PATH, 64, warm)
    r["thr_nolog"] = bench.wrk(gw.url + GATEWAY_PATH, 64, secs)
    bench.stop_gateway(gw)

    sse_direct = f"http://127.0.0.1:{bench.sse_port}{DIRECT_PATH}"
    pool = max(args.streams, args.idle_streams) + 64
    r["pool_size"] = pool
    log(f"3. streams (gateway with AZURE_OPENAI_PROXY_POOL_SIZE={pool})")
    gw = bench.start_gateway("streams", bench.sse_port, pool_size=pool)
    sse_gateway = gw.url + GATEWAY_PATH
    r["single_direct"] = bench.streams(sse_direct, 1, 64, 20, rounds=args.single_rounds)
    r["single_gateway"] = bench.streams(sse_gateway, 1, 64, 20, rounds=args.single_rounds)
    log(f"3. {args.streams} concurrent streams x 64 chunks at 20 ms, all started at once")
    r["many_direct"] = bench.streams(sse_direct, args.streams, 64, 20)
    r["many_gateway"] = bench.streams(sse_gateway, args.streams, 64, 20, watch_pid=gw.pid)
    log(f"3. the same with the starts spread over {args.stream_ramp:g} s")
    ramp = args.stream_ramp
    r["ramp_direct"] = bench.streams(sse_direct, args.streams, 64, 20, ramp=ramp)
    r["ramp_gateway"] = bench.streams(
        sse_gateway, args.streams, 64, 20, ramp=ramp, watch_pid=gw.pid
    )
    r["many_hwm_kib"] = proc_status_kib(gw.pid, "VmHWM")
    bench.stop_gateway(gw)

    log("6. stream normaliser off (AZURE_OPENAI_STREAM_MODE=passthrough): the spread-out streams")
    gw = bench.start_gateway(
        "streams-passthrough", bench.sse_port, pool_size=pool, stream_mode="passthrough"
    )
    r["ramp_passthrough"] = bench.streams(
        gw.url + GATEWAY_PATH, args.streams, 64, 20, ramp=ramp, watch_pid=gw.pid
    )
    bench.stop_gateway(gw)

    n = args.idle_streams
    fd_limit = fd_soft_limit()
    # The gateway holds two descriptors per stream (client and upstream) plus a few of its own.
    most = (fd_limit - 128) // 2
    r["idle_note"] = ""
    if n > most:
        r["idle_note"] = (
            f"{most:,} instead of {n:,}: the open-file limit here is {fd_limit:,} and cannot "
            "be raised (the gateway needs 2 per stream)"
        )
        log(f"warning: idle streams {r['idle_note']}")
        n = most
    r["idle_n"] = n
    # Started at a steady rate rather than all at once (a burst of 10,000 connects measures
    # the listen backlog, not memory); earlier streams get more chunks, so that all of them
    # end together and are all open for the last `idle_chunks` seconds.
    r["idle_ramp"] = ramp = n / args.idle_rate
    chunks = args.idle_chunks
    log(f"4. {n} idle streams, 1 chunk/s, started over {ramp:.0f} s, all open for {chunks} s")
    gw = bench.start_gateway("idle-streams", bench.sse_port, pool_size=pool)
    # Warm the gateway's code paths with one stream so that the before-figure is comparable.
    bench.streams(gw.url + GATEWAY_PATH, 1, 2, 1)
    time.sleep(0.5)
    r["idle_before_kib"] = proc_status_kib(gw.pid, "VmRSS")
    r["idle_direct"] = bench.streams(sse_direct, n, chunks, 1000, ramp=ramp, end_together=True)
    r["idle_gateway"] = bench.streams(
        gw.url + GATEWAY_PATH, n, chunks, 1000, ramp=ramp, end_together=True, watch_pid=gw.pid
    )
    bench.stop_gateway(gw)

    measure_upload(bench, r)
    return r


def measure_upload(bench: Bench, r: dict[str, Any]) -> None:
    """Row 5: time of a 25 MB upload direct and through the gateway; the gateway's RSS growth."""
    gw = bench.start_gateway("upload", bench.sse_port)
    status, _ = multipart_upload(gw.url + UPLOAD_PATH, 1000, model_first=True)
    if status == 404:
        log("5. no /v1/audio/transcriptions in this gateway: upload row pending")
        r["upload"] = None
        bench.stop_gateway(gw)
        return
    log(f"5. {UPLOAD_BYTES / 1e6:g} MB multipart uploads")
    direct = f"http://127.0.0.1:{bench.sse_port}{DIRECT_UPLOAD_PATH}"
    r["upload"] = {}
    for model_first in (True, False):
        multipart_upload(gw.url + UPLOAD_PATH, 2_000_000, model_first=model_first)  # warm-up
        d_status, d_secs = multipart_upload(direct, UPLOAD_BYTES, model_first=model_first)
        time.sleep(0.3)
        exact = reset_peak_rss(gw.pid)
        before = proc_status_kib(gw.pid, "VmRSS")
        samples: list[int] = []
        done = threading.Event()

        def sample(samples: list[int] = samples, done: threading.Event = done) -> None:
            while not done.is_set():
                samples.append(proc_status_kib(gw.pid, "VmRSS"))
                time.sleep(0.002)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            g_status, g_secs = multipart_upload(
                gw.url + UPLOAD_PATH, UPLOAD_BYTES, model_first=model_first
            )
        finally:
            done.set()
            sampler.join()
        peak = proc_status_kib(gw.pid, "VmHWM") if exact else max(samples, default=before)
        r["upload"]["first" if model_first else "last"] = {
            "direct_status": d_status,
            "direct_s": d_secs,
            "status": g_status,
            "seconds": g_secs,
            "growth_kib": max(0, peak - before),
            "exact": exact,
        }
    bench.stop_gateway(gw)


# --- the table ----------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


def plus_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f} ms"


def rps(value: float) -> str:
    return f"{value:,.0f} req/s"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}{TIMES}" if denominator else "—"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def diff(gateway: float | None, direct: float | None) -> float | None:
    return None if gateway is None or direct is None else gateway - direct


def mb(kib: float) -> str:
    return f"{kib * 1024 / 1e6:.1f} MB"


def idle_rss_per_stream(r: dict[str, Any], n: int) -> tuple[float | None, str]:
    """(KiB per open stream, note): the RSS while every stream is open, minus before, over N."""
    run: StreamRun = r["idle_gateway"]
    before = r["idle_before_kib"]
    if not run.rss_samples:
        return None, "no RSS samples"
    start, end = run.all_open_at, run.first_done_at
    if start is not None and end is not None and end >= start:
        window = [rss for t, rss in run.rss_samples if start <= t <= end]
        if not window:
            window = [min(run.rss_samples, key=lambda s: abs(s[0] - start))[1]]
        return (max(window) - before) / n, "sampled while all were open"
    peak_open = run.summary["peak_open"] or 1
    peak = max(rss for _, rss in run.rss_samples)
    return (peak - before) / peak_open, f"never all open at once: peak {peak_open:,} open"


def table(r: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []

    def row(*cells: str) -> None:
        rows.append(cells)

    row("idle RSS after start", "—", mb(r["idle_rss_kib"]), "—", "≤ 60 MB",
        met(r["idle_rss_kib"] * 1024 <= 60e6))  # fmt: skip

    td, tg = r["thr_direct"], r["thr_gateway"]
    row("1. throughput, 64 connections", rps(td.rps), rps(tg.rps), ratio(tg.rps, td.rps),
        "≥ 4,000 req/s", met(tg.rps >= 4000))  # fmt: skip
    row("1. latency p50, 64 connections", ms(td.p50_ms), ms(tg.p50_ms),
        plus_ms(tg.p50_ms - td.p50_ms), "—", "—")  # fmt: skip
    row("1. latency p99, 64 connections", ms(td.p99_ms), ms(tg.p99_ms),
        plus_ms(tg.p99_ms - td.p99_ms), "—", "—")  # fmt: skip
    row("1. errors (non-2xx + socket), 64 connections",
        f"{td.errors} of {td.requests:,}", f"{tg.errors} of {tg.requests:,}", "—", "0",
        met(tg.errors == 0 and td.errors == 0))  # fmt: skip
    row("1. gateway CPU per request", "—", f"{r['cpu_us']:.0f} µs", "—", "≤ 250 µs",
        met(r["cpu_us"] <= 250))  # fmt: skip

    ref = r["ref_thr"]
    row("1. reference: nginx reverse proxy on core 0 instead, throughput", rps(td.rps),
        rps(ref.rps), ratio(ref.rps, td.rps), "—", "—")  # fmt: skip

    ld, lg = r["lat_direct"], r["lat_gateway"]
    p50, p99 = lg.p50_ms - ld.p50_ms, lg.p99_ms - ld.p99_ms
    row("2. added latency p50, 1 connection", ms(ld.p50_ms), ms(lg.p50_ms), plus_ms(p50),
        "≤ +0.3 ms", met(p50 <= 0.3))  # fmt: skip
    row("2. added latency p99, 1 connection", ms(ld.p99_ms), ms(lg.p99_ms), plus_ms(p99),
        "≤ +1 ms", met(p99 <= 1.0))  # fmt: skip
    rl = r["ref_lat"]
    row("2. reference: nginx reverse proxy on core 0 instead, added p50 / p99",
        f"{ms(ld.p50_ms)} / {ms(ld.p99_ms)}", f"{ms(rl.p50_ms)} / {ms(rl.p99_ms)}",
        f"{plus_ms(rl.p50_ms - ld.p50_ms)} / {plus_ms(rl.p99_ms - ld.p99_ms)}", "—",
        "—")  # fmt: skip

    sd, sg = r["single_direct"].summary, r["single_gateway"].summary
    added = diff(sg["ttfc_ms"]["p50"], sd["ttfc_ms"]["p50"])
    row(f"3. single stream: time to first chunk (median of {args.single_rounds})",
        ms(sd["ttfc_ms"]["p50"]), ms(sg["ttfc_ms"]["p50"]), plus_ms(added), "≤ +1 ms",
        met(added is not None and added <= 1.0 and sg["lost"] == 0))  # fmt: skip

    md, mg = r["many_direct"].summary, r["many_gateway"].summary
    label = f"3. {args.streams:,} streams, started at once"
    ttfc50 = diff(mg["ttfc_ms"]["p50"], md["ttfc_ms"]["p50"])
    ttfc99 = diff(mg["ttfc_ms"]["p99"], md["ttfc_ms"]["p99"])
    gap99 = diff(mg["gap_ms"]["p99"], md["gap_ms"]["p99"])
    row(f"{label}: time to first chunk p50", ms(md["ttfc_ms"]["p50"]),
        ms(mg["ttfc_ms"]["p50"]), plus_ms(ttfc50), "—", "—")  # fmt: skip
    row(f"{label}: time to first chunk p99", ms(md["ttfc_ms"]["p99"]),
        ms(mg["ttfc_ms"]["p99"]), plus_ms(ttfc99), "≤ +5 ms",
        met(ttfc99 is not None and ttfc99 <= 5))  # fmt: skip
    row(f"{label}: inter-chunk gap p99", ms(md["gap_ms"]["p99"]), ms(mg["gap_ms"]["p99"]),
        plus_ms(gap99), "≤ +5 ms", met(gap99 is not None and gap99 <= 5))  # fmt: skip
    row(f"{label}: chunks lost", lost(md), lost(mg), "—", "0",
        met(mg["lost"] == 0 and md["lost"] == 0))  # fmt: skip
    many: StreamRun = r["many_gateway"]
    row(f"{label}: CPU busy, core 0 (gateway) / core 1 (load)",
        busy(r["many_direct"]), busy(many), "—", "—", "—")  # fmt: skip
    per_chunk = cpu_per_chunk(many)
    row(f"{label}: gateway CPU per relayed chunk (stream set-up included)", "—",
        f"{per_chunk:.0f} µs", "—", "—", "—")  # fmt: skip

    rd, rg = r["ramp_direct"].summary, r["ramp_gateway"].summary
    label = f"3. the same, starts spread over {args.stream_ramp:g} s"
    ttfc99 = diff(rg["ttfc_ms"]["p99"], rd["ttfc_ms"]["p99"])
    gap99 = diff(rg["gap_ms"]["p99"], rd["gap_ms"]["p99"])
    row(f"{label}: time to first chunk p99", ms(rd["ttfc_ms"]["p99"]),
        ms(rg["ttfc_ms"]["p99"]), plus_ms(ttfc99), "(≤ +5 ms)", "—")  # fmt: skip
    row(f"{label}: inter-chunk gap p99", ms(rd["gap_ms"]["p99"]), ms(rg["gap_ms"]["p99"]),
        plus_ms(gap99), "(≤ +5 ms)", "—")  # fmt: skip
    row(f"{label}: chunks lost; CPU busy core 0 / core 1",
        f"{lost(rd)}; {busy(r['ramp_direct'])}", f"{lost(rg)}; {busy(r['ramp_gateway'])}",
        "—", "0", met(rg["lost"] == 0 and rd["lost"] == 0))  # fmt: skip
    row("3. gateway peak RSS over the stream rows (VmHWM)", "—", mb(r["many_hwm_kib"]), "—",
        "—", "—")  # fmt: skip

    n = r["idle_n"]
    idd, idg = r["idle_direct"].summary, r["idle_gateway"].summary
    label = f"4. {n:,} idle streams, 1 chunk/s"
    row(f"{label}: completed; CPU busy core 0 / core 1",
        f"{completed(idd)}; {busy(r['idle_direct'])}",
        f"{completed(idg)}; {busy(r['idle_gateway'])}", "—", "all",
        met(idg["completed"] == n and idg["lost"] == 0))  # fmt: skip
    per_stream, note = idle_rss_per_stream(r, n)
    row(f"{label}: gateway RSS per open stream",
        "—", "—" if per_stream is None else f"{per_stream:.1f} KiB ({note})", "—", "≤ 48 KiB",
        met(per_stream is not None and per_stream <= 48 and idg["all_open"]))  # fmt: skip

    uploads = r.get("upload")
    if not uploads:
        row("5. 25 MB multipart upload: RSS growth", "—", UPLOAD_PENDING, "—", "≤ 4 MB",
            "pending")  # fmt: skip
    for order, where in (("first", "before"), ("last", "after")):
        u = (uploads or {}).get(order)
        if u is None:
            continue
        ok = u["status"] == 200 and u["direct_status"] == 200
        how = "VmHWM" if u["exact"] else "sampled VmRSS"
        cell = f"{u['seconds'] * 1000:.0f} ms (HTTP {u['status']}); RSS +{mb(u['growth_kib'])}"
        row(f"5. {UPLOAD_BYTES / 1e6:g} MB multipart upload, `model` {where} the file: "
            "time; gateway RSS growth",
            f"{u['direct_s'] * 1000:.0f} ms (HTTP {u['direct_status']})",
            f"{cell} ({how})",
            plus_ms((u["seconds"] - u["direct_s"]) * 1000), "≤ 4 MB RSS growth",
            met(ok and u["growth_kib"] * 1024 <= 4e6))  # fmt: skip

    nolog, cors = r["thr_nolog"], r["thr_cors"]
    row("6. cost of the access log (throughput on ÷ off)", "—",
        f"on {rps(tg.rps)} / off {rps(nolog.rps)}", ratio(tg.rps, nolog.rps), "—", "—")  # fmt: skip
    row("6. cost of CORS (throughput with ÷ without `Origin:`)", "—",
        f"with {rps(cors.rps)} / without {rps(tg.rps)}", ratio(cors.rps, tg.rps), "—",
        "—" if cors.errors == 0 else f"**{cors.errors} errors**")  # fmt: skip
    on, off = cpu_per_chunk(r["ramp_gateway"]), cpu_per_chunk(r["ramp_passthrough"])
    row("6. cost of the stream normaliser (relay capacity on ÷ off, from CPU per chunk)", "—",
        f"on {on:.0f} µs / off {off:.0f} µs per chunk", ratio(off, on), "—",
        "—" if r["ramp_passthrough"].summary["lost"] == 0 else "**chunks lost**")  # fmt: skip
    return rows


def cpu_per_chunk(run: StreamRun) -> float:
    """Gateway CPU µs per chunk relayed (stream set-up included)."""
    return (run.cpu_s or 0.0) * 1e6 / max(1, run.summary["received_chunks"])


def busy(run: StreamRun) -> str:
    cores = run.core_busy
    return f"{cores.get('cpu0', 0):.0%} / {cores.get('cpu1', 0):.0%}"


def lost(summary: dict[str, Any]) -> str:
    text = f"{summary['lost']:,} of {summary['expected_chunks']:,}"
    if summary["errors"]:
        text += " (" + ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) + ")"
    return text


def completed(summary: dict[str, Any]) -> str:
    text = f"{summary['completed']:,} of {summary['streams']:,}"
    if not summary["all_open"]:
        text += f"; at most {summary['peak_open']:,} open at once"
    else:
        text += "; all open at once"
    if summary["errors"]:
        text += " (" + ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) + ")"
    return text


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def header(bench: Bench, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    import azproxy

    commit = version_of(["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"])
    nginx = version_of([bench.nginx_bin, "-v"]).replace("nginx version: ", "")
    wrk = version_of([bench.wrk_bin, "-v"]).split(" [")[0]
    mode = "QUICK run (indicative only: short runs, fewer streams)" if args.quick else "full run"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    background = " / ".join(
        ", ".join(f"{k} {v:.0%}" for k, v in sorted(sample.items())) for sample in r["background"]
    )
    if any(max(sample.values(), default=0) > BUSY for sample in r["background"]):
        background += " (**other work was running: it skews these figures**)"
    return [
        "# azproxy benchmark: direct vs gateway",
        "",
        f"- {mode}, {when}; azproxy {azproxy.__version__} (`{commit}`)",
        f"- machine: `{platform.machine()}`, {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, aiohttp {package_version('aiohttp')}, "
        f"gateway event loop: {r.get('loop', '?')}; {nginx}, {wrk}",
        "- pinning: the gateway (`python -m azproxy`, one process) alone on core 0; nginx, "
        "`bench/sse_upstream.py`, wrk and `bench/stream_load.py` on core 1; the reference rows "
        "put nginx as a plain reverse proxy (`proxy_pass`, keep-alive) on core 0 instead",
        f"- background CPU, one second before / after the run: {background}",
        "- features on: access log (INFO, to a file), CORS (origins `*`), request ids, "
        "stream normaliser (`AZURE_OPENAI_STREAM_MODE=openai`, the default); stream rows with "
        f"`AZURE_OPENAI_PROXY_POOL_SIZE={r['pool_size']}` (the default 1024 would queue "
        "streams beyond 1024 for a free upstream connection)",
        f"- wrk: 1 thread, {args.duration:g} s per figure after a {args.warmup:g} s warm-up, "
        "POST of a 62-byte chat body with `Authorization: Bearer k`; nginx answers a 1 KB "
        "Azure-shaped JSON from memory",
        f"- rows 1, 2 and the CORS ratio: the median of {args.rounds} round(s), direct and "
        "gateway interleaved; gateway throughput across the rounds: "
        f"{', '.join(rps(x) for x in r['spread']['rps'])}; CPU per request: "
        f"{', '.join(f'{x:.0f}' for x in r['spread']['cpu_us'])} µs; CPU time the hypervisor "
        "took from core 0 (steal, from /proc/stat) during those rounds: "
        f"{', '.join(f'{x:.0%}' for x in r['spread']['steal'])}",
        f"- streams (rows 3): 64 chunks 20 ms apart from `bench/sse_upstream.py`, read by "
        f"`bench/stream_load.py --client {args.stream_client}`; time to first chunk counts from "
        "just before the client connects",
        f"- idle streams (rows 4): started at {args.idle_rate:g}/s over {r['idle_ramp']:.0f} s "
        "(a burst of thousands of connects at once would measure the listen backlog instead), "
        f"one chunk per second, earlier streams longer, so that all are open together for the "
        f"last {args.idle_chunks} s, when the gateway's RSS is sampled",
        *([f"- idle streams: {r['idle_note']}"] if r.get("idle_note") else []),
        "",
    ]


def render(head: list[str], rows: list[tuple[str, ...]]) -> str:
    lines = [*head]
    lines.append("| measure | direct | gateway | difference / ratio | target | met? |")
    lines.append("|---|---|---|---|---|---|")
    for cells in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def gateway_loop(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "uvloop" if "uvloop" in f.read() else "asyncio"
    except OSError:
        return "?"


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Direct-vs-gateway benchmark of azproxy.")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 200 + 1,000 streams")
    parser.add_argument("--duration", type=float, help="seconds per wrk figure (10; quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of wrk warm-up (2; quick 1)")
    parser.add_argument("--streams", type=int, help="concurrent streams (1000; quick 200)")
    parser.add_argument("--idle-streams", type=int, help="idle streams (10000; quick 1000)")
    parser.add_argument(
        "--stream-ramp", type=float, default=1.0, help="seconds over which to spread starts"
    )
    parser.add_argument(
        "--stream-client", choices=("raw", "aiohttp"), default="raw", help="see stream_load.py"
    )
    parser.add_argument("--idle-rate", type=float, help="idle streams started per s (250)")
    parser.add_argument(
        "--idle-chunks", type=int, help="seconds all idle streams stay open together (10; quick 5)"
    )
    parser.add_argument("--single-rounds", type=int, help="single-stream rounds (5; quick 3)")
    parser.add_argument(
        "--rounds", type=int, help="rounds of rows 1, 2 and CORS; the median is shown (3; quick 1)"
    )
    parser.add_argument("--out", type=Path, help="table file (results/latest.md; quick.md)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep logs and configs")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is not met")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": 3.0 if quick else 10.0,
        "warmup": 1.0 if quick else 2.0,
        "streams": 200 if quick else 1000,
        "idle_streams": 1000 if quick else 10000,
        "idle_rate": 500.0 if quick else 250.0,
        "idle_chunks": 5 if quick else 10,
        "single_rounds": 3 if quick else 5,
        "rounds": 1 if quick else 3,
        "out": HERE / "results" / ("quick.md" if quick else "latest.md"),
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def fd_soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def idle_check(when: str) -> dict[str, float]:
    """How busy each core is for one second with none of the bench's processes running."""
    before = core_times()
    time.sleep(1.0)
    busy = core_busy(before, core_times())
    if max(busy.values(), default=0) > BUSY:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(busy.items()))
        log(f"warning: the machine is busy {when} the run ({shares}): other work skews figures")
    return busy


def main() -> int:
    args = parse_args()
    if (os.cpu_count() or 1) < 2:
        log("warning: fewer than 2 cores; the pinning assumes cores 0 and 1")
    raise_fd_limit()
    # This script is mostly asleep, but keep even its wake-ups off the gateway's core.
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    background = [idle_check("before")]
    bench = Bench(args)
    try:
        results = measure(bench, args)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        args.keep_tmp = True
        return 1
    except Exception:
        args.keep_tmp = True
        raise
    finally:
        bench.close()
    background.append(idle_check("after"))
    results["background"] = background
    head = header(bench, results, args)
    rows = table(results, args)
    text = render(head, rows)
    elapsed = time.monotonic() - started
    text += f"\nWhole run: {elapsed:.0f} s.\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log(f"table written to {args.out}")
    if args.check and any(cells[-1] == "**no**" for cells in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
