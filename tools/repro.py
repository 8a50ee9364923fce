"""Run standalone repro scripts (Note [Repros] in conformance/repro/__init__.py) and say how each ended.

    python -m tools.repro results.jsonl               # every script a results file holds, stock torch
    python -m tools.repro results.jsonl --fault ID    # the same with one catalogued fault injected

Each script runs in this process, in a namespace of its own, one after another; a script that
leaks global torch state into the next is a bug in the script writer. Prints one JSON line per
script: its node id, and the exception it raised (null when it ran to the end).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from reports import schema


def scripts_of(results: Path) -> dict[str, dict]:
    """node id -> {"repro", "fails_with"} for every failing item of a results file."""
    out = {}
    for record in schema.load(results).results:
        if record.get("repro"):
            out[record["nodeid"]] = {"repro": record["repro"], "fails_with": record.get("repro_fails_with")}
    return out


def outcome(script: str) -> dict:
    """How one script ends; torch's global state (default dtype, grad mode, generator) is put
    back afterwards, so that scripts run one after another do not see each other."""
    from conformance.repro.run import run_here

    return {"raised": run_here(script)}


def run(scripts: dict[str, str], *, fault: str | None = None, backends=(), timeout: float = 600) -> dict[str, dict]:
    """Run `scripts` (node id -> text) in a fresh interpreter, `fault` injected there if given."""
    payload = json.dumps(scripts)
    command = [sys.executable, "-m", "tools.repro", "-", *(["--fault", fault] if fault else [])]
    command += [f"--backend={b}" for b in backends]
    done = subprocess.run(
        command, input=payload, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parent.parent
    )
    results = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            results[record.pop("nodeid")] = record
    if done.returncode and not results:
        raise RuntimeError(
            f"the script runner failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
        )
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.repro", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="a results.jsonl, or - for a JSON object of node id -> script on stdin")
    parser.add_argument("--fault", help="inject this catalogued fault first")
    parser.add_argument("--backend", action="append", default=[], metavar="MODULE", help="import this backend first")
    args = parser.parse_args(argv)
    if args.source == "-":
        try:
            scripts = json.loads(sys.stdin.read())
        except json.JSONDecodeError as exc:
            parser.exit(2, f"{parser.prog}: error: standard input is not a JSON object of node id -> script ({exc.msg})\n")
    else:
        path = Path(args.source)
        if not path.is_file():
            parser.exit(2, f"{parser.prog}: error: {args.source}: no such results file\n")
        try:
            scripts = {k: v["repro"] for k, v in scripts_of(path).items()}
        except schema.ResultsError as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
    import importlib

    for module in args.backend:
        importlib.import_module(module)
    if args.fault:
        from conformance import faults

        # the runner's own machinery first (restoring torch's state imports torch._inductor lazily):
        # a fault that replaces a torch name (torch.device) must break the scripts, not the runner
        outcome("pass")

        try:
            faults.inject(args.fault)
        except KeyError:
            parser.exit(2, f"{parser.prog}: error: no such fault: {args.fault}\n")
    for nodeid, script in scripts.items():
        print(json.dumps({"nodeid": nodeid, **outcome(script)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
