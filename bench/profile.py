"""py-spy on the gunicorn workers while one client runs scenario-1 lifecycles (PostgreSQL).

Two recordings of `profile_seconds` each: raw collapsed stacks (summarised here: self time by
package, inclusive time of the app's own functions, top self-time functions) and a flamegraph
SVG. Files: bench/results/profile-<ts>.{txt,svg,md}. Needs `py-spy` (pip install py-spy) and
ptrace rights on the workers (root, or CAP_SYS_PTRACE).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter

from bench.client import in_processes, lifecycle_loop
from bench.report import RESULTS
from bench.stack import BENCH, ROOT

BUSY = "handle_request"  # samples of a worker serving a request (idle workers are left out)
PACKAGES = (("psycopg", "psycopg (driver, waiting on PostgreSQL)"),
            ("sqlalchemy", "SQLAlchemy"), ("SpiffWorkflow", "SpiffWorkflow"),
            ("RestrictedPython", "RestrictedPython"), ("app/engine/sandbox", "app sandbox"),
            ("jsonschema", "jsonschema"), ("marshmallow", "marshmallow"),
            ("flask_smorest", "flask-smorest/webargs"), ("webargs", "flask-smorest/webargs"),
            ("werkzeug", "Flask/Werkzeug"), ("flask", "Flask/Werkzeug"),
            ("gunicorn", "gunicorn"), ("/rq/", "rq"), ("/redis/", "redis-py"),
            ("/requests/", "requests/urllib3"), ("/urllib3/", "requests/urllib3"),
            ("/http/", "http (stdlib)"), ("/json/", "json"), ("zlib", "zlib"),
            ("uuid", "uuid"), (f"{ROOT}/app/", "app (own code)"),
            (f"{ROOT}/workers/", "app (own code)"))
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def profile_lifecycles(bench) -> None:
    stack, res, seconds = bench.stack, bench.results, bench.sizes["profile_seconds"]
    spy = shutil.which("py-spy")
    if spy is None:
        res.note("profile skipped: py-spy is not installed (pip install py-spy)")
        return
    base = RESULTS / f"profile-{res.started}"
    RESULTS.mkdir(exist_ok=True)
    for fmt, suffix in (("raw", ".txt"), ("flamegraph", ".svg")):
        argv = [spy, "record", "--pid", str(stack.procs["web"].pid), "--subprocesses",
                "--rate", "200", "--full-filenames", "--duration", str(int(seconds)),
                "--format", fmt, "-o", f"{base}{suffix}"]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        in_processes(lifecycle_loop, [(stack.port, stack.tokens, f"prof-{fmt}", 100_000,
                                       seconds + 1.0)], timeout=seconds + 120)
        _, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            res.errors.append(f"py-spy failed: {err.decode()[-300:]}")
            return
    _statements(stack, res)
    _inprocess(stack, res)
    summary = summarize((base.with_suffix(".txt")).read_text())
    res.extra["profile"] = summary
    base.with_suffix(".md").write_text(render(summary))
    print(render(summary, limit=12), flush=True)
    res.note(f"profile: {base}.svg (flamegraph), {base}.md (hotspots)")


def spy_start(pid: int, seconds: float, path) -> subprocess.Popen | None:
    """py-spy record (raw) of one process in the background; None without py-spy."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    argv = [spy, "record", "--pid", str(pid), "--rate", "200", "--full-filenames",
            "--duration", str(max(1, int(seconds))), "--format", "raw", "-o", str(path)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spy_finish(proc: subprocess.Popen | None, path, busy: str, title: str, res,
               key: str) -> None:
    """Wait for a spy_start recording, summarise the samples inside `busy`, keep the report."""
    if proc is None:
        res.note(f"{title}: profile skipped (pip install py-spy)")
        return
    proc.wait(timeout=600)
    if proc.returncode != 0 or not path.exists():
        res.errors.append(f"py-spy of {title} failed ({proc.returncode})")
        return
    summary = summarize(path.read_text(), busy)
    res.extra[key] = summary
    path.with_suffix(".md").write_text(render(summary, title=title))
    print(render(summary, limit=10, title=title), flush=True)
    res.note(f"profile of {title}: {path.with_suffix('.md')}")


def _statements(stack, res) -> None:
    """SQL statements / commits / pool checkouts per call (bench/statements.py)."""
    counts = _script(stack, res, "statements.py", 5, 300, "statement count")
    if counts is None:
        return
    res.extra["statements_per_call"] = counts
    for call, c in counts.items():
        res.add(f"s1.pg.sql.{call}", f"S1 pg SQL statements per {call} (+commits, checkouts)",
                f"(+{c.get('commits', 0):g}, {c.get('checkouts', 0):g})", c.get("statements", 0))


def _inprocess(stack, res, n: int = 60) -> None:
    """Lifecycle cost without HTTP, durable vs synchronous_commit=off, interleaved."""
    found = _script(stack, res, "inprocess.py", n, 600, "in-process probe")
    if found is None:
        return
    res.extra["inprocess_p50_ms"] = found
    for mode, label in (("durable", "durable"), ("no_fsync", "synchronous_commit=off")):
        for call in ("complete_a", "complete_b", "lifecycle"):
            res.add(f"s1.pg.inproc.{mode}.{call}", f"S1 pg in-process {call} p50 ({label})",
                    "ms", found[mode][call])


def _script(stack, res, name: str, n: int, timeout: int, what: str) -> dict | None:
    """Run bench/<name> N in the stack's env; the JSON its last line prints, or None with
    the failure recorded."""
    out = subprocess.run([sys.executable, str(BENCH / name), str(n)], cwd=ROOT,
                         env=stack.env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        res.errors.append(f"{what} failed: {out.stderr[-300:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _frame(text: str) -> tuple[str, str]:
    match = FRAME.match(text.strip())
    return (match["func"], match["file"]) if match else (text.strip(), "")


def summarize(raw: str, busy: str = BUSY) -> dict:
    self_time, inclusive, packages = Counter(), Counter(), Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        if busy not in stack:
            continue
        frames = [_frame(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        total += n
        func, file = frames[-1]
        self_time[f"{func} ({_short(file)})"] += n
        packages[_package(file)] += n
        for name in {f"{f} ({_short(p)})" for f, p in frames if _is_app(p)}:
            inclusive[name] += n
    share = (lambda c: [(k, round(100 * v / total, 1)) for k, v in c.most_common(25)]) \
        if total else (lambda c: [])
    return {"samples": total, "by_package_self": share(packages),
            "app_inclusive": share(inclusive), "top_self": share(self_time)}


def _is_app(path: str) -> bool:
    return path.startswith((f"{ROOT}/app/", f"{ROOT}/workers/"))


def _short(path: str) -> str:
    for marker in ("site-packages/", f"{ROOT}/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _package(path: str) -> str:
    for needle, name in PACKAGES:
        if needle in path:
            return name
    return "other (stdlib, interpreter)"


def render(summary: dict, limit: int = 25,
           title: str = "gunicorn workers serving a request") -> str:
    lines = [f"# py-spy hotspots ({summary['samples']} samples of {title}; % of those)", ""]
    for title, key in (("Self time by package", "by_package_self"),
                       ("Inclusive time of app functions", "app_inclusive"),
                       ("Top self-time functions", "top_self")):
        lines += [f"## {title}", ""]
        lines += [f"- {pct:5.1f}%  {name}" for name, pct in summary[key][:limit]]
        lines.append("")
    return "\n".join(lines)
