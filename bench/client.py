"""HTTP load: a keep-alive `http.client` API client, the scenario-1 lifecycle, and a pool of
separate client processes (spawned, so no app code is ever imported on the client side)."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


class ApiError(Exception):
    pass


class Api:
    """One connection per client; reopened automatically when the server closes it
    (gunicorn's sync workers answer `Connection: close`)."""

    def __init__(self, port: int, token: str, timeout: float = 60.0):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None, expect: int = 200):
        """(json answer, seconds) timed with perf_counter around request + full read."""
        payload = json.dumps(body).encode() if body is not None else None
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        elapsed = time.perf_counter() - start
        if response.status != expect:
            raise ApiError(f"{method} {path} -> {response.status}: {raw[:300]!r}")
        return (json.loads(raw) if raw else None), elapsed

    def close(self) -> None:
        self.conn.close()


def lifecycle(agent: Api, manager: Api, tag: str, amount: int = 21) -> list[tuple[str, float]]:
    """Scenario 1: start (agent) -> list tasks (agent) -> complete A -> list tasks (manager)
    -> complete B -> status. Returns [(call, seconds)] plus ("lifecycle", total)."""
    began = time.perf_counter()
    timings = []
    inst, dt = agent.call("POST", "/api/instances", {"process_key": "approval",
                                                     "business_key": tag}, expect=201)
    timings.append(("start", dt))
    iid = inst["id"]
    tasks, dt = agent.call("GET", f"/api/tasks?instance_id={iid}")
    timings.append(("list_tasks", dt))
    _, dt = agent.call("POST", f"/api/tasks/{_only(tasks)}/complete", {"data": {"amount": amount}})
    timings.append(("complete_a", dt))
    tasks, dt = manager.call("GET", f"/api/tasks?instance_id={iid}")
    timings.append(("list_tasks", dt))
    _, dt = manager.call("POST", f"/api/tasks/{_only(tasks)}/complete",
                         {"data": {"approved": True}})
    timings.append(("complete_b", dt))
    detail, dt = agent.call("GET", f"/api/instances/{iid}")
    timings.append(("status", dt))
    if detail["status"] != "completed" or detail["variables"].get("total") != amount * 2:
        raise ApiError(f"instance {iid} ended {detail['status']} with {detail['variables']}")
    timings.append(("lifecycle", time.perf_counter() - began))
    return timings


def _only(task_list: dict) -> int:
    items = task_list["items"]
    if len(items) != 1:
        raise ApiError(f"expected one open task, got {len(items)}")
    return items[0]["id"]


@dataclass
class LoopResult:
    samples: dict[str, list[float]] = field(default_factory=dict)
    done: int = 0
    errors: list[str] = field(default_factory=list)
    first: float = 0.0  # wall clock of the first call / the end of the last one
    last: float = 0.0


def lifecycle_loop(port: int, tokens: dict, prefix: str, max_count: int, seconds: float,
                   start_at: float | None = None, warmup: int = 0) -> LoopResult:
    """Run lifecycles until `max_count` or `seconds` (after `start_at`, a time.time());
    the first `warmup` lifecycles are run but not recorded."""
    agent, manager = Api(port, tokens["ana"]), Api(port, tokens["bruno"])
    for i in range(warmup):
        lifecycle(agent, manager, f"{prefix}-w{i}")
    if start_at:
        time.sleep(max(0.0, start_at - time.time()))
    result = LoopResult(first=time.time())
    deadline = time.monotonic() + seconds
    for i in range(max_count):
        if time.monotonic() >= deadline or len(result.errors) > 20:
            break
        try:
            for name, value in lifecycle(agent, manager, f"{prefix}-{i}"):
                result.samples.setdefault(name, []).append(value)
            result.done += 1
        except (ApiError, OSError, http.client.HTTPException) as exc:
            result.errors.append(str(exc)[:300])
    result.last = time.time()
    agent.close()
    manager.close()
    return result


def start_loop(port: int, token: str, process_key: str, variables: list[dict], prefix: str,
               seconds: float) -> LoopResult:
    """Start instances (one per `variables` entry) as fast as one client can, bounded."""
    api = Api(port, token)
    result = LoopResult(first=time.time())
    deadline = time.monotonic() + seconds
    for i, values in enumerate(variables):
        if time.monotonic() >= deadline or len(result.errors) > 20:
            break
        try:
            _, dt = api.call("POST", "/api/instances", {"process_key": process_key,
                                                        "business_key": f"{prefix}-{i}",
                                                        "variables": values}, expect=201)
            result.samples.setdefault("start", []).append(dt)
            result.done += 1
        except (ApiError, OSError, http.client.HTTPException) as exc:
            result.errors.append(str(exc)[:300])
    result.last = time.time()
    api.close()
    return result


def get_loop(port: int, requests: list[tuple[str, str, str]]) -> LoopResult:
    """GET each (name, token, path) once, in order; timings listed under their name."""
    conns: dict[str, Api] = {}
    result = LoopResult(first=time.time())
    for name, token, path in requests:
        api = conns.setdefault(token, Api(port, token))
        try:
            _, dt = api.call("GET", path)
            result.samples.setdefault(name, []).append(dt)
            result.done += 1
        except (ApiError, OSError, http.client.HTTPException) as exc:
            result.errors.append(str(exc)[:300])
            if len(result.errors) > 20:
                break
    result.last = time.time()
    for api in conns.values():
        api.close()
    return result


def in_processes(func, arg_lists: list[tuple], timeout: float) -> list[LoopResult]:
    """Run func(*args) for each args in its own spawned process; bounded by `timeout`."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(arg_lists)) as pool:
        pending = [pool.apply_async(func, args) for args in arg_lists]
        deadline = time.monotonic() + timeout
        return [p.get(max(1.0, deadline - time.monotonic())) for p in pending]


def merge(results: list[LoopResult]) -> LoopResult:
    total = LoopResult(first=min(r.first for r in results), last=max(r.last for r in results))
    for r in results:
        total.done += r.done
        total.errors += r.errors
        for name, values in r.samples.items():
            total.samples.setdefault(name, []).extend(values)
    return total
