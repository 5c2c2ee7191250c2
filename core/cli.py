"""The `kilnworks` command: a thin dispatcher to each package's own command module.

Each subcommand lives with the package that does the work (``simulators/cli.py``,
``edge_agent/cli.py``, ...) and exposes ``main(argv: list[str]) -> int``. The dispatcher imports
a module only when its command runs, so ``kilnworks --help`` stays fast and a broken optional
part (say, the dashboard) never stops the agent from starting.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command -> (module with main(argv), one line a plant engineer can read)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("api.demo", "run a simulated workshop, the agent, the store and the dashboard here"),
    "simulate": ("simulators.cli", "run simulated kilns (OPC UA) and presses (MQTT)"),
    "agent": ("edge_agent.cli", "collect kiln and press telemetry into the store"),
    "serve": ("api.cli", "serve the API and the dashboard"),
    "report": ("analytics.cli", "judge a firing against its programme, or compute OEE, offline"),
    "import": ("ingest.cli_import", "load a CSV export (time,asset,field,value) into a store"),
    "export": ("ingest.cli_export", "write readings from a store as CSV"),
}

USAGE = """\
usage: kilnworks COMMAND [options]   (kilnworks COMMAND --help for a command's options)

kilnworks reads kiln and press telemetry over OPC UA and MQTT, stores it in InfluxDB,
judges every firing against its programme and computes OEE.

commands:
{commands}
"""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if args[0] == "--version":
        from importlib.metadata import version

        print(f"kilnworks {version('kilnworks')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"kilnworks: unknown command {name!r}\n", file=sys.stderr)
        print(_usage(), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
