"""What scenario 3 needs in the database: the support team and the customers (pure data, no
app code imported, so another checkout run with --app-root gets the same setup).

The team mirrors `app/demo_data/team.py`: post-sale N1 agents (group `posventa`, each the
`n1_agent` of a share of the customers) and one agent per N2 and per N3 group of the deployed
`routing` decision table (read from the app's bpmn/support_case/routing.dmn).
"""

from __future__ import annotations

import csv
import random
import xml.etree.ElementTree as ET
from pathlib import Path

SUPPORT_DIR = Path("bpmn") / "support_case"  # under the app root
N1_AGENTS = 6
CUSTOMERS = 300
PASSWORD = "bench1234"
SEED = 3
# share of the customers, value ranks (as app/demo_data/mix.py SEGMENTS)
SEGMENTS = {"personas": (0.15, (60, 100)), "pyme": (0.30, (40, 90)),
            "empresas": (0.33, (15, 60)), "corporativo": (0.22, (1, 30))}
DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


def routing_groups(root: Path) -> dict[str, list[str]]:
    """{"n2_group": [...], "n3_group": [...]}: every group an output of the routing table names."""
    tree = ET.parse(root / SUPPORT_DIR / "routing.dmn")
    table = next(d for d in tree.iter(f"{DMN}decision") if d.get("id") == "routing")
    names = [o.get("name") for o in table.iter(f"{DMN}output")]
    groups: dict[str, set[str]] = {name: set() for name in names}
    for rule in table.iter(f"{DMN}rule"):
        for name, entry in zip(names, rule.iter(f"{DMN}outputEntry"), strict=True):
            groups[name].add(entry.findtext(f"{DMN}text").strip().strip('"'))
    return {name: sorted(found) for name, found in groups.items()}


def team(root: Path) -> dict[str, str]:
    """username: its one group. N1 agents are posventa1..; the others are `<group>_1`."""
    members = {f"posventa{i}": "posventa" for i in range(1, N1_AGENTS + 1)}
    for groups in routing_groups(root).values():
        members |= {f"{group}_1": group for group in groups}
    return members


def customers(count: int = CUSTOMERS, seed: int = SEED) -> list[dict]:
    """`count` customers of every segment, each served by one N1 agent (round robin)."""
    rng = random.Random(seed)
    segments = [s for s, (share, _) in SEGMENTS.items() for _ in range(round(share * count))]
    found = []
    for i, segment in enumerate(segments[:count]):
        low, high = SEGMENTS[segment][1]
        found.append({"id": f"{900_100_000 + i}-{i % 10}", "name": f"Cliente bench {i}",
                      "segment": segment, "value_rank": rng.randint(low, high),
                      "sensitivity": rng.choice(("low", "medium", "high")),
                      "n1_agent": f"posventa{i % N1_AGENTS + 1}", "account_manager": "",
                      "email": f"cliente{i}@bench.example"})
    return found


def write_customers(path: Path) -> Path:
    """The customers as the CSV `clientconnect customers import` reads."""
    rows = customers()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def setup_commands(root: Path, tmp: Path) -> tuple[list[list[str]], list[str]]:
    """The `clientconnect` commands that load the reference data, create the team and import
    the customers; and the usernames that need an API token."""
    members = team(root)
    commands = [["reference", "load", str(root / SUPPORT_DIR / "reference.json")]]
    commands += [["users", "create", "--username", user, "--password", PASSWORD, "--role",
                  "agent", "--groups", group] for user, group in members.items()]
    commands.append(["customers", "import", str(write_customers(tmp / "customers.csv"))])
    return commands, list(members)
