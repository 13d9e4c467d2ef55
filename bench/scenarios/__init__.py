"""The scenario registry. A scenario is one function, registered with `@scenario(...)`:

    @scenario(3, "support_case, realistic mix, 16 clients", order=25)
    def support_case(bench: Bench) -> None:
        for run in range(bench.runs):
            ...                          # drive bench.stack over HTTP from client processes
            bench.results.add("s3.instances_per_s", "S3 instances/s", "/s", value, (">=", 50))

`backends` says which stacks it runs on ("postgresql": gunicorn + RQ workers + ticker on a
fresh database; "sqlite": the embedded `clientconnect serve`); `order` places it in the
sequence on a stack (scenarios share one database per bench run, so ones that leave much data
behind run last). Import the module in `load()` below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

MODULES = ("lifecycle", "concurrent", "inbox", "timers", "service", "size", "support_case")


@dataclass
class Bench:
    """What a scenario receives: the running stack, sizes, the number of runs, the results."""

    stack: object
    sizes: dict
    runs: int
    results: object
    profile: bool = False

    @property
    def short(self) -> str:
        return "sqlite" if self.stack.backend == "sqlite" else "pg"


@dataclass(frozen=True)
class Scenario:
    number: int
    title: str
    func: Callable[[Bench], None]
    backends: tuple[str, ...]
    order: int


REGISTRY: dict[int, list[Scenario]] = {}


def scenario(number: int, title: str, backends: tuple[str, ...] = ("postgresql",),
             order: int | None = None):
    """Register `func(bench)` as scenario `number`."""
    def register(func: Callable[[Bench], None]):
        REGISTRY.setdefault(number, []).append(
            Scenario(number, title, func, backends, number * 10 if order is None else order))
        return func
    return register


def load() -> dict[int, list[Scenario]]:
    for name in MODULES:
        import_module(f"{__name__}.{name}")
    return REGISTRY


def plan(numbers: list[int], backend: str) -> list[Scenario]:
    """The registered scenarios among `numbers` that run on `backend`, in order."""
    chosen = [s for n in numbers for s in REGISTRY.get(n, []) if backend in s.backends]
    return sorted(chosen, key=lambda s: s.order)
