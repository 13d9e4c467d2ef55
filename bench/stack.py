"""The real stack, started as subprocesses: a fresh PostgreSQL database, Redis db 14, gunicorn,
RQ workers and tickers; or the embedded SQLite server (`clientconnect serve`) in a temp dir.

Everything runs from the project folder with `python -m app.cli` (the `clientconnect` entry
point without needing the package installed). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from redis import Redis

from bench import support_data

BENCH = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("BENCH_APP_ROOT") or BENCH.parent).resolve()  # the app under test
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# What `clientconnect deploy` gets: the approval demo, the support flow (scenario 3) and the
# bench's own models (scenarios 5, 6).
DEPLOY = (ROOT / "bpmn" / "approval", ROOT / support_data.SUPPORT_DIR, BENCH / "bpmn")
# Scenario 3 keeps at most one open case per client: the mass-incident rule (N cases of one
# product in T minutes open a major incident) is set out of reach so every path stays as drawn.
SUPPORT_ENV = {"CLIENTCONNECT_MASS_INCIDENT_CASES": "10000"}
PROCESS_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str = "/healthz", limit: float = 60.0, proc=None) -> None:
    """Poll until the server answers 200 (bounded by `limit` seconds)."""
    import http.client
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from 127.0.0.1:{port}{path} within {limit:.0f}s")


class Proc:
    """A child process in its own session (so Ctrl-C reaches only the bench), logged to a file."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path):
        self.name = name
        self.log = logdir / f"{name}.log"
        self.handle = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.handle,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self) -> None:
        """Ask it to stop: gunicorn's quick shutdown (SIGINT), SIGTERM for the rest."""
        if self.alive():
            self.popen.send_signal(signal.SIGINT if self.name == "web" else signal.SIGTERM)

    def stop(self, timeout: float = PROCESS_TIMEOUT) -> None:
        self.signal()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)  # its own group, created by us
            self.popen.wait(5)
        self.handle.close()


def run_cli(env: dict, commands: list[list[str]]) -> list[str]:
    """Run `clientconnect` commands (through bench/clirun.py, one interpreter); their outputs.

    Helper scripts run by path, not `-m bench...`: with cwd = the app root, another checkout's
    own bench/ folder would shadow this one."""
    out = subprocess.run([sys.executable, str(BENCH / "clirun.py"), json.dumps(commands)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"clientconnect failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class Stack:
    """Base: an env, a temp dir, tokens, and the processes to stop."""

    backend = "?"

    def __init__(self, quiet: bool = True):
        self.tmp = Path(tempfile.mkdtemp(prefix="ccf-bench-"))
        self.procs: dict[str, Proc] = {}
        self.tokens: dict[str, str] = {}
        self.port = free_port()
        self.env = {**os.environ, "PYTHONPATH": f"{ROOT}:{BENCH.parent}", "LOG_LEVEL": "WARNING",
                    "CLIENTCONNECT_INSTANCE_DIR": str(self.tmp / "instance"),
                    "CLIENTCONNECT_BPMN_DIR": str(ROOT / "bpmn"),
                    "CLIENTCONNECT_FORMS_DIR": str(ROOT / "forms")}
        self.env.pop("REDIS_URL", None)

    def spawn(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(name, argv, self.env, self.tmp)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc:
            proc.stop()

    def pids(self, prefix: str) -> list[int]:
        return [p.pid for n, p in self.procs.items() if n.startswith(prefix) and p.alive()]

    def web_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        master = self.procs.get("web")
        return children(master.pid) if master else []

    def settle(self, limit: float = 30.0, window: float = 0.5, busy: float = 0.05) -> float:
        """Wait (at most `limit` s) until the stack's processes, children included, use less
        than `busy` of one core over `window` s: workers and tickers still importing the app
        would otherwise share the CPU with the first measured run. The seconds waited."""
        began = time.monotonic()
        sessions = {proc.pid for proc in self.procs.values()}
        used = cpu_seconds(sessions)
        while time.monotonic() - began < limit:
            time.sleep(window)
            now = cpu_seconds(sessions)
            if now - used < busy * window:
                break
            used = now
        return time.monotonic() - began

    def close(self) -> None:
        for proc in self.procs.values():  # all at once, then wait for each
            proc.signal()
        for name in list(self.procs):
            self.stop(name)


def children(pid: int) -> list[int]:
    return sorted(child for child, fields in _proc_stats() if int(fields[1]) == pid)


def cpu_seconds(sessions: set[int]) -> float:
    """CPU time (user + system) used so far by every process in these sessions."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _proc_stats()
                if int(fields[3]) in sessions)
    return ticks / os.sysconf("SC_CLK_TCK")


def _proc_stats():
    """(pid, the fields of /proc/<pid>/stat after the command name) of every live process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PostgresStack(Stack):
    """Fresh database bench_<ts>, Redis db 14 flushed, gunicorn + 2 workers + 1 ticker."""

    backend = "postgresql"

    def __init__(self, web_workers: int, web_threads: int = 1, workers: int = 2,
                 tickers: int = 1, synchronous_commit: str = "on"):
        super().__init__()
        self.synchronous_commit = synchronous_commit
        self.dbname = f"bench_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
        self.database_url = f"postgresql://postgres@127.0.0.1:5432/{self.dbname}"
        self.env.update(DATABASE_URL=self.database_url, REDIS_URL=REDIS_URL, **SUPPORT_ENV)
        self.web_workers, self.web_threads = web_workers, web_threads
        self.n_workers, self.n_tickers = workers, tickers
        self._created = False

    def start(self) -> PostgresStack:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.dbname}"')
            if self.synchronous_commit != "on":  # only this bench database
                conn.execute(f'ALTER DATABASE "{self.dbname}" SET synchronous_commit = '
                             f'{self.synchronous_commit}')
        self._created = True
        Redis.from_url(REDIS_URL).flushdb()
        support, team = support_data.setup_commands(ROOT, self.tmp)
        users = [*TOKEN_USERS, *team]
        outputs = run_cli(self.env, [["db", "upgrade"], ["deploy", *map(str, DEPLOY)],
                                     *USER_COMMANDS, *support,
                                     *[["tokens", "create", u] for u in users]])
        self.tokens = dict(zip(users, outputs[-len(users):], strict=True))
        self.start_web()
        self.set_workers(self.n_workers)
        self.set_tickers(self.n_tickers)
        return self

    def start_web(self) -> None:
        argv = [sys.executable, "-m", "gunicorn", "-w", str(self.web_workers), "--threads",
                str(self.web_threads), "-b", f"127.0.0.1:{self.port}", "--timeout", "120",
                "app.wsgi:app"]
        proc = self.spawn("web", argv)
        wait_http(self.port, proc=proc.popen)

    def set_workers(self, n: int) -> None:
        """Run exactly n `clientconnect worker` processes."""
        self._scale("worker", n, ["worker"])

    def set_tickers(self, n: int) -> None:
        """Run exactly n `clientconnect ticker` processes."""
        self._scale("ticker", n, ["ticker"])

    def _scale(self, prefix: str, n: int, command: list[str]) -> None:
        names = sorted(x for x in self.procs if x.startswith(prefix + "-"))
        for name in names[n:]:
            self.procs[name].signal()
        for name in names[n:]:
            self.stop(name)
        for i in range(len(names), n):
            self.spawn(f"{prefix}-{i}", [sys.executable, "-m", "app.cli", *command])

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, autocommit=True)

    def close(self) -> None:
        super().close()
        if self._created:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
            self._created = False
        with contextlib.suppress(Exception):  # best effort at teardown
            Redis.from_url(REDIS_URL).flushdb()


class SqliteStack(Stack):
    """The embedded default: `clientconnect serve` without REDIS_URL, in a temp instance dir."""

    backend = "sqlite"

    def start(self) -> SqliteStack:
        self.database_url = f"sqlite:///{self.tmp / 'instance' / 'clientconnect.db'}"
        self.env["DATABASE_URL"] = self.database_url
        proc = self.spawn("web", [sys.executable, "-m", "app.cli", "serve", "--port",
                                  str(self.port)])
        wait_http(self.port, proc=proc.popen)
        outputs = run_cli(self.env, [["tokens", "create", u] for u in TOKEN_USERS])
        self.tokens = dict(zip(TOKEN_USERS, outputs, strict=True))
        return self


# The demo users of `clientconnect serve` (ana: sales, bruno: managers, olga: operator).
USER_COMMANDS = [
    ["users", "create", "--username", "ana", "--password", "bench1234", "--role", "agent",
     "--groups", "posventa,sales"],
    ["users", "create", "--username", "bruno", "--password", "bench1234", "--role", "agent",
     "--groups", "managers"],
    ["users", "create", "--username", "olga", "--password", "bench1234", "--role", "operator"],
]
TOKEN_USERS = ("ana", "bruno", "olga")
