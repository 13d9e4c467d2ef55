"""python -m bench [--quick] [--scenarios 1,2,3,4,5,6,7] [--runs 3] [--profile]

Starts the real stack itself (SQLite embedded server for scenario 1; PostgreSQL + Redis +
gunicorn + 2 RQ workers + ticker for the rest), drives it over HTTP from client processes,
prints a table (figure, value, target, pass/fail) and writes bench/results/<timestamp>.json.
Everything is torn down at the end, also on Ctrl-C and errors.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback

from app.cli.serve import default_web_workers

SIZES = {
    "full": {"s1_lifecycles": 300, "s1_warmup": 20, "s2_warmup": 2, "s1_seconds": 120,
             "s2_clients": 16, "s2_seconds": 20, "s3_clients": 16, "s3_seconds": 25,
             "s3_warmup": 1,
             "s4_tasks": 200_000, "s4_groups": 50, "s4_agents": 500, "s4_requests": 200,
             "s5_timers": 10_000, "s5_spread": 60.0, "s5_lead": 8.0, "s5_limit": 120.0,
             "s6_jobs": 1000, "s6_clients": 8, "s6_limit": 300.0,
             "s7_lifecycles": 200, "profile_seconds": 15.0},
    "quick": {"s1_lifecycles": 20, "s1_warmup": 5, "s2_warmup": 0, "s1_seconds": 30,
              "s2_clients": 16, "s2_seconds": 3, "s3_clients": 16, "s3_seconds": 5,
              "s3_warmup": 0,
              "s4_tasks": 5_000, "s4_groups": 50, "s4_agents": 500, "s4_requests": 30,
              "s5_timers": 60, "s5_spread": 2.0, "s5_lead": 3.0, "s5_limit": 60.0,
              "s6_jobs": 60, "s6_clients": 4, "s6_limit": 60.0,
              "s7_lifecycles": 15, "profile_seconds": 4.0},
}
ALL = [1, 2, 3, 4, 5, 6, 7]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 2 min)")
    parser.add_argument("--scenarios", default=",".join(map(str, ALL)),
                        help="comma-separated scenario numbers (default: all)")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per scenario; figures are the median (default 3, quick 1)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the gunicorn workers during scenario 1 on PostgreSQL")
    parser.add_argument("--web-workers", type=int, default=default_web_workers(),
                        help="gunicorn workers (default 2*cores+1, as `clientconnect serve`)")
    parser.add_argument("--web-threads", type=int, default=1)
    parser.add_argument("--inbox-sort", default="sla_risk",
                        choices=["sla_risk", "priority", "due_at", "created_at"],
                        help="sort of the scenario-4 inbox (default: SLA risk, the agents' own)")
    parser.add_argument("--pg-synchronous-commit", default="on", choices=["on", "off"],
                        help="off: no WAL flush wait per commit on the bench database (shows "
                             "what the disk's fsync costs; not the app's durable default)")
    parser.add_argument("--app-root", default=None,
                        help="folder of the ClientConnect checkout to run (default: this one)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.app_root:  # read by bench.stack at import
        os.environ["BENCH_APP_ROOT"] = os.path.abspath(args.app_root)
    from bench import scenarios
    from bench.report import Results
    numbers = [int(x) for x in args.scenarios.split(",") if x.strip()]
    runs = args.runs or (1 if args.quick else 3)
    sizes = dict(SIZES["quick" if args.quick else "full"], inbox_sort=args.inbox_sort)
    results = Results({"quick": args.quick, "runs": runs, "scenarios": numbers, "sizes": sizes,
                       "web_workers": args.web_workers, "web_threads": args.web_threads,
                       "pg_synchronous_commit": args.pg_synchronous_commit})
    registry = scenarios.load()
    for n in numbers:
        if n not in registry:
            results.note(f"scenario {n} is not implemented yet (skipped)")
    signal.signal(signal.SIGTERM, _interrupt)
    began = time.monotonic()
    try:
        for backend in ("sqlite", "postgresql"):
            todo = scenarios.plan(numbers, backend)
            if todo:
                _run_stack(backend, todo, args, sizes, runs, results)
    except KeyboardInterrupt:
        results.errors.append("interrupted")
        print("\ninterrupted: stack torn down", file=sys.stderr)
    finally:
        results.extra["seconds"] = round(time.monotonic() - began, 1)
        path = results.write()
        print()
        print(results.table())
        for line in results.notes:
            print(f"note: {line}")
        for line in results.errors[:20]:
            print(f"error: {line}")
        print(f"\nwrote {path} ({results.extra['seconds']}s)")
    return 1 if results.errors else 0


def _run_stack(backend, todo, args, sizes, runs, results) -> None:
    from bench import scenarios
    from bench.stack import ROOT, PostgresStack, SqliteStack

    results.config["app_root"] = str(ROOT)
    print(f"== starting the {backend} stack", flush=True)
    stack = SqliteStack() if backend == "sqlite" else PostgresStack(
        args.web_workers, args.web_threads, synchronous_commit=args.pg_synchronous_commit)
    try:
        stack.start()
        results.note(f"{backend} stack settled {stack.settle():.1f}s after start-up")
        bench = scenarios.Bench(stack, sizes, runs, results, args.profile)
        for item in todo:
            print(f"== scenario {item.number} on {backend}: {item.title}", flush=True)
            t0, load, speed = time.monotonic(), _load(), _probe(results)
            try:
                item.func(bench)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one scenario's failure is reported
                traceback.print_exc()
                results.errors.append(f"scenario {item.number} ({backend}): {exc!r}")
            took = time.monotonic() - t0
            where = f"{item.number}-{backend}"
            results.extra.setdefault("load", {})[where] = [load, _load()]
            results.extra.setdefault("machine_probe", {})[where] = [speed, _probe(results)]
            results.note(f"scenario {item.number} ({backend}): {took:.0f}s, load average "
                         f"{load:.1f} before, {_load():.1f} after ({os.cpu_count()} cores); "
                         f"machine probe before: {_speed(speed)}")
            print(f"   done in {took:.1f}s", flush=True)
    finally:
        stack.close()
        results.extra.setdefault("logs", []).append(str(stack.tmp))


def _load() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def _probe(results) -> dict:
    """The machine's speed now (bench.calibrate), {} when PostgreSQL cannot be reached."""
    from bench.calibrate import probe
    from bench.stack import PG_ADMIN
    try:
        return probe(PG_ADMIN)
    except Exception as exc:  # noqa: BLE001 - a missing yardstick is noted, not fatal
        results.note(f"machine probe failed: {exc!r}")
        return {}


def _speed(speed: dict) -> str:
    if not speed:
        return "none"
    return (f"cpu {speed['cpu_ms']:.2f} ms, PG round trip {speed['pg_round_trip_us']:.0f} µs, "
            f"durable commit {speed['pg_commit_us']:.0f} µs")


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
