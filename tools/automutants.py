"""`python -m tools.killmatrix --auto`: run the automatic API mutants and report strength."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reports import strength
from reports.schema import atomic_write

ROOT = Path(__file__).resolve().parent.parent


def _behaviours(selection: str | None, shard: str | None, parser) -> list[str]:
    from conformance import catalogue

    ids = sorted(catalogue.behaviours())
    if selection:
        wanted = [s.strip() for s in selection.split(",") if s.strip()]
        unknown = [w for w in wanted if not any(i == w or i.startswith(w + ".") for i in ids)]
        if unknown:
            parser.exit(2, f"{parser.prog}: error: unknown behaviour or area: {', '.join(unknown)}\n")
        ids = [i for i in ids if any(i == w or i.startswith(w + ".") for w in wanted)]
    if shard:
        try:
            k, n = (int(x) for x in shard.split("/"))
            if not 1 <= k <= n:
                raise ValueError
        except ValueError:
            parser.exit(2, f"{parser.prog}: error: --shard {shard!r}: expected K/N with 1 <= K <= N\n")
        ids = ids[k - 1 :: n]
    return ids


def run(behaviours: list[str], workers: str, operators: str | None, classes: bool, out: Path) -> float:
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-report",
        "--hypothesis-profile=faults", "--timeout=0", "--device=cpu", f"--auto-mutants={out}",
        f"--behaviour={','.join(behaviours)}", *(["-n", workers] if workers != "0" else []),
        *([f"--auto-operators={operators}"] if operators else []), *([] if classes else ["--auto-classes=none"]),
    ]  # fmt: skip
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def report(data: dict) -> str:
    summary = data["summary"]
    lines = [f"{'area':16} {'behav.':>6} {'killed':>7} {'surv.':>6} {'equiv.':>6} {'unreach.':>8} {'n/a':>6}  kill rate"]
    for area, f in [*summary["areas"].items(), ("ALL", summary["overall"])]:
        rate = "-" if f["kill_rate"] is None else f"{100 * f['kill_rate']:.1f}%"
        lines.append(
            f"{area:16} {f['behaviours']:>6} {f['killed']:>7} {f['survived']:>6} {f['equivalent']:>6} "
            f"{f['unreached']:>8} {f['not applicable']:>6}  {rate}"
        )
    return "\n".join(lines)


def main(args, parser) -> int:
    if args.auto_merge:
        merged_behaviours = {}
        seconds = 0.0
        for path in args.auto_merge:
            try:
                part = strength.load(path)
            except strength.StrengthError as exc:
                parser.exit(2, f"{parser.prog}: error: {exc}\n")
            merged_behaviours.update(part["behaviours"])
            seconds += part["summary"].get("seconds", 0)
        data = {
            "summary": {**strength.summarise(merged_behaviours), "seconds": round(seconds, 1)},
            "behaviours": merged_behaviours,
        }
    else:
        behaviours = _behaviours(args.behaviour, args.shard, parser)
        with tempfile.TemporaryDirectory(prefix="auto-mutants-") as tmp:
            seconds = run(behaviours, args.workers, args.operators, not args.no_classes, Path(tmp))
            try:
                per_behaviour = strength.verdicts(strength.load_workers([Path(tmp)]))
            except strength.StrengthError as exc:
                parser.exit(2, f"{parser.prog}: error: the run wrote no results ({exc})\n")
        data = {"summary": {**strength.summarise(per_behaviour), "seconds": round(seconds, 1)}, "behaviours": per_behaviour}
    print(report(data))
    print(json.dumps({"overall": data["summary"]["overall"], "seconds": data["summary"]["seconds"]}))
    if args.json:
        atomic_write(args.json, json.dumps(data, indent=1, sort_keys=True))
    return 0
