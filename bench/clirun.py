"""Run several `clientconnect` commands in one interpreter (saves ~1 s of imports per command).

    python bench/clirun.py '[["db","upgrade"],["tokens","create","ana"]]'

Each command goes through the real click CLI (app.cli.main); the last line printed is a JSON
list of each command's output (stripped). Exit 1 on the first failing command.
"""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from app.cli import main


def run(commands: list[list[str]]) -> list[str]:
    runner = CliRunner()
    outputs = []
    for argv in commands:
        result = runner.invoke(main, argv, catch_exceptions=False)
        if result.exit_code != 0:
            sys.stderr.write(f"clientconnect {' '.join(argv)} failed ({result.exit_code}):\n"
                             f"{result.output}\n")
            sys.exit(1)
        outputs.append(result.stdout.strip())
    return outputs


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
