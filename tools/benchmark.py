"""Benchmark the suite on this machine and write the figures as JSON.

    python -m tools.benchmark                 # table on stdout, JSON in conformance-report/benchmark.json
    python -m tools.benchmark --json out.json --skip-serial

Measures, in one run: the whole suite's wall time on the `ci` profile serially and with -n 2,
the parallel efficiency, examples per second per behaviour and the ten slowest behaviours, the
share of Hypothesis time spent generating inputs (its own draw-time data) versus running the
test body, peak memory (largest process), and the render time of a synthetic 30,000-result
file. With CUDA present it also times the CPU and CUDA halves of a --device cpu,cuda run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from reports.schema import atomic_write

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "parallel_wall_s": 30.0,
    "parallel_efficiency": 0.80,
    "generation_share": 0.50,
    "render_30k_s": 2.0,
    "cuda_over_cpu": 1.5,
}


def run_suite(report_dir: Path, *args: str) -> float:
    env = {**os.environ, "CI": "true"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--report-dir={report_dir}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"benchmark: the suite failed ({' '.join(args)}):\n{done.stdout[-2000:]}")
    return wall


def read_results(path: Path) -> list[dict]:
    from reports.schema import load

    return load(path).results


def per_behaviour(results: list[dict]) -> dict:
    by = defaultdict(lambda: {"seconds": 0.0, "examples": 0})
    for r in results:
        if r["status"] == "passed":
            by[r["behaviour"]]["seconds"] += r.get("duration", 0.0)
            by[r["behaviour"]]["examples"] += r.get("examples") or 0
    for v in by.values():
        v["examples_per_s"] = round(v["examples"] / v["seconds"], 1) if v["seconds"] else None
        v["seconds"] = round(v["seconds"], 3)
    return dict(by)


def synthetic_results(path: Path, count: int = 30_000) -> None:
    from conformance import catalogue

    rng = random.Random(0)
    ids = list(catalogue.behaviours())
    dtypes = ["float16", "bfloat16", "float32", "float64", "int64", "bool", None]
    statuses = ["passed"] * 90 + ["failed"] * 4 + ["skipped"] * 4 + ["error", "expected failure"]
    with path.open("w") as f:
        f.write(json.dumps({"type": "environment", "source": "synthetic", "devices": ["cpu", "cuda"], "end": "x"}) + "\n")
        for i in range(count):
            status = rng.choice(statuses)
            rec = {
                "type": "result",
                "nodeid": f"conformance/test_x.py::test_{i}[cpu]",
                "behaviour": rng.choice(ids),
                "device": rng.choice(["cpu", "cuda"]),
                "dtype": rng.choice(dtypes),
                "status": status,
                "duration": 0.01,
                "examples": 25,
                "features": {"layout=contiguous": 10, "ndim=2": 5},
                "repro_line": f"pytest 'conformance/test_x.py::test_{i}[cpu]'",
            }
            if status == "failed":
                rec.update(error="AssertionError: <b>bad</b>", example="TensorSpec(shape=(2, 3))")
            f.write(json.dumps(rec) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.benchmark")
    parser.add_argument("--json", type=Path, default=ROOT / "conformance-report" / "benchmark.json")
    parser.add_argument("--skip-serial", action="store_true", help="skip the serial run (efficiency unknown)")
    args = parser.parse_args(argv)
    figures: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parallel = run_suite(tmp / "parallel", "-n", "2")
        figures["parallel_wall_s"] = round(parallel, 2)
        if not args.skip_serial:
            serial = run_suite(tmp / "serial", "-p", "no:xdist")
            figures["serial_wall_s"] = round(serial, 2)
            figures["parallel_efficiency"] = round(serial / (2 * parallel), 3)
        results = read_results(tmp / "parallel" / "results.jsonl")
        figures["results"] = len(results)
        figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        draw = sum(r.get("draw_s") or 0 for r in results)
        run = sum(r.get("run_s") or 0 for r in results)
        figures["generation_share"] = round(draw / run, 3) if run else None
        behaviours = per_behaviour(results)
        figures["examples"] = sum(v["examples"] for v in behaviours.values())
        figures["min_examples_per_passed_item"] = min(
            (r.get("examples") or 0 for r in results if r["status"] == "passed" and r.get("examples")), default=None
        )
        figures["slowest_behaviours"] = sorted(
            ({"behaviour": k, **v} for k, v in behaviours.items()), key=lambda v: -v["seconds"]
        )[:10]
        figures["behaviours"] = behaviours

        synthetic = tmp / "synthetic.jsonl"
        synthetic_results(synthetic)
        from reports import render

        start = time.perf_counter()
        render.write_html([synthetic], tmp / "synthetic.html")
        figures["render_30k_s"] = round(time.perf_counter() - start, 3)
        figures["render_30k_html_mb"] = round((tmp / "synthetic.html").stat().st_size / 2**20, 2)

        import torch

        if torch.cuda.is_available():
            from tools.gpu_acceptance import summarise_run

            run_suite(tmp / "cuda", "-n", "2", "--device", "cpu,cuda")
            halves = summarise_run(tmp / "cuda" / "results.jsonl")["busy_s"]
            figures["cpu_half_s"], figures["cuda_half_s"] = halves.get("cpu"), halves.get("cuda")
            figures["cuda_over_cpu"] = round(halves["cuda"] / halves["cpu"], 3) if halves.get("cpu") else None

    rows = [
        ("whole suite, -n 2 (ci profile)", figures.get("parallel_wall_s"), "parallel_wall_s", "<"),
        ("whole suite, serial", figures.get("serial_wall_s"), None, ""),
        ("parallel efficiency (2 workers)", figures.get("parallel_efficiency"), "parallel_efficiency", ">"),
        ("input generation share", figures.get("generation_share"), "generation_share", "<"),
        ("render 30,000 results (s)", figures.get("render_30k_s"), "render_30k_s", "<"),
        ("peak memory, largest process (MB)", figures.get("peak_rss_mb"), None, ""),
        ("CUDA half / CPU half", figures.get("cuda_over_cpu"), "cuda_over_cpu", "<"),
    ]
    print(f"{'figure':40} {'value':>10} {'target':>10}  verdict")
    for label, value, key, sense in rows:
        target = TARGETS.get(key)
        verdict = (
            ""
            if target is None or value is None
            else ("met" if (value < target if sense == "<" else value >= target) else "MISSED")
        )
        print(
            f"{label:40} {str(value if value is not None else '-'):>10} {(sense + str(target)) if target else '':>10}  {verdict}"
        )
    print("\nten slowest behaviours (summed item seconds, examples/s):")
    for v in figures["slowest_behaviours"]:
        print(f"  {v['seconds']:7.2f}s {str(v['examples_per_s']):>8}/s  {v['behaviour']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.json, json.dumps(figures, indent=1))
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
