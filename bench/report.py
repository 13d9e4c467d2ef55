"""Figures, exact percentiles, the machine and versions, the printed table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
OPS = {"<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t}


def pct(values: list[float], p: float) -> float:
    """Exact percentile (linear interpolation between order statistics, like numpy's default)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    if p == 50:
        return statistics.median(values)
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: tuple[str, float] | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def passed(self) -> bool | None:
        if self.target is None or not self.values:
            return None
        op, limit = self.target
        return OPS[op](self.median, limit)


class Results:
    def __init__(self, config: dict):
        self.started = time.strftime("%Y%m%d-%H%M%S")
        self.config = config
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.extra: dict = {}

    def add(self, key: str, label: str, unit: str, value: float,
            target: tuple[str, float] | None = None, note: str = "") -> None:
        fig = self.figures.setdefault(key, Figure(key, label, unit, target=target, note=note))
        fig.values.append(round(float(value), 4))

    def add_ms(self, key: str, label: str, seconds: list[float], ps=(50, 95),
               targets: dict | None = None) -> None:
        """Percentiles of a list of durations (seconds) as figures in ms."""
        for p in ps:
            target = (targets or {}).get(p)
            self.add(f"{key}.p{p}", f"{label} p{p}", "ms", pct(seconds, p) * 1000, target)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def table(self) -> str:
        rows = [("figure", "value", "runs", "target", "result")]
        for fig in self.figures.values():
            target = f"{fig.target[0]} {fig.target[1]:g} {fig.unit}" if fig.target else ""
            verdict = {True: "PASS", False: "FAIL", None: ""}[fig.passed]
            rows.append((fig.label, f"{_fmt(fig.median)} {fig.unit}", str(len(fig.values)),
                         target, verdict))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def write(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{self.started}.json"
        figures = [{**asdict(f), "median": f.median, "passed": f.passed}
                   for f in self.figures.values()]
        path.write_text(json.dumps({
            "started": self.started, "machine": machine(), "versions": versions(),
            "config": self.config, "figures": figures, "notes": self.notes,
            "errors": self.errors, "extra": self.extra}, indent=2, default=str))
        return path


def _fmt(value: float) -> str:
    if value != value:  # nan
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"


def machine() -> dict:
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next((line.split()[1] for line in _read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), "0")
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": round(int(mem) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def versions() -> dict:
    found = {}
    for name in ("SpiffWorkflow", "Flask", "flask-smorest", "SQLAlchemy", "psycopg", "gunicorn",
                 "rq", "redis", "requests"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["sqlite"] = sqlite3.sqlite_version
    found["postgresql"] = _server("psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                                  "-Atc", "SHOW server_version")
    found["redis-server"] = _server("redis-cli", "-h", "127.0.0.1", "info", "server")
    if found["redis-server"]:
        found["redis-server"] = next((x.split(":")[1] for x in found["redis-server"].split()
                                      if x.startswith("redis_version:")), None)
    from bench.stack import ROOT
    marker = ROOT / ".commit"  # written next to a `git archive` snapshot, which has no .git
    found["app_commit"] = (_server("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
                           or (marker.read_text().strip() if marker.exists() else None))
    found["app_tree_changes"] = _server("git", "-C", str(ROOT), "status", "--porcelain",
                                        "--untracked-files=no")
    return found


def _server(*argv: str) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
