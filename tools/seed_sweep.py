"""Run the whole suite under many Hypothesis seeds and report any test whose verdict changes.

    python -m tools.seed_sweep                  # 20 seeds, the ci profile's example count, -n 2
    python -m tools.seed_sweep --seeds 40 --device cpu,cuda

Each run uses the `default` profile (ci's 25 examples per item, randomized) with its own
--hypothesis-seed, so every run draws different inputs. A flaky test is one whose status is not
the same in every run; on stock torch there must be none. Exit status 1 if any is found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from reports.schema import BAD, atomic_write, load

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.seed_sweep")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write per-run figures and flaky tests here")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.exit(2, f"{parser.prog}: error: --seeds must be positive\n")
    verdicts: dict[str, dict[int, str]] = defaultdict(dict)
    runs = []
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            out = Path(tmp) / str(seed)
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-n",
                "2",
                "-p",
                "no:cacheprovider",
                "--hypothesis-profile",
                "default",
                f"--hypothesis-seed={seed}",
                f"--report-dir={out}",
            ]
            if args.device:
                cmd.append(f"--device={args.device}")
            start = time.perf_counter()
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            results = load(out / "results.jsonl").results
            for r in results:
                verdicts[r["nodeid"]][seed] = r["status"]
            counts = defaultdict(int)
            for r in results:
                counts[r["status"]] += 1
            runs.append({"seed": seed, "exit": done.returncode, "seconds": round(seconds, 1), **counts})
            print(f"seed {seed:4}: exit {done.returncode}, {seconds:5.1f}s, {dict(counts)}", flush=True)
    flaky = {node: v for node, v in verdicts.items() if len(set(v.values())) > 1 or len(v) != len(runs)}
    failing = {node: v for node, v in verdicts.items() if node not in flaky and set(v.values()) & set(BAD)}
    print(f"\n{len(runs)} runs, {len(verdicts)} test items, {sum(r['seconds'] for r in runs):.0f}s in all")
    print(f"flaky (verdict changed between seeds): {len(flaky)}")
    for node, v in sorted(flaky.items()):
        print(f"  {node}: {v}")
    print(f"failing under every seed: {len(failing)}")
    for node in sorted(failing):
        print(f"  {node}")
    if args.json:
        atomic_write(args.json, json.dumps({"runs": runs, "flaky": flaky, "failing": sorted(failing)}, indent=1))
    return 1 if flaky or failing else 0


if __name__ == "__main__":
    sys.exit(main())
