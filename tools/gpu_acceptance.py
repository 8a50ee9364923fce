"""Gather, in one command, the evidence that the suite works on a GPU machine.

    python -m tools.gpu_acceptance --out gpu-evidence            # on a machine with CUDA
    python -m tools.gpu_acceptance --out /tmp/dry --device meta --behaviour devices   # plumbing only

Steps, each timed; a failing step does not stop the ones after it:
  suite      the whole suite with --device cpu,DEVICE (ci profile, -n WORKERS), report in OUT/run/:
             per-device status counts, wall time, the largest per-test CUDA peak, the device's
             memory in use sampled with nvidia-smi while it runs, and every CUDA-only behaviour
             (the catalogue's needs = "cuda") with its status: met only if each passed (or is
             skipped for want of a second GPU or for another torch release, the reason listed)
  compiled   every declared operation under torch.compile with inductor on DEVICE alone
             (--compile=inductor --device DEVICE, the compiled-mode modules), report in OUT/compiled/
  selftests  tests/test_gpu_robustness.py: a real device-side assert ends only its worker, each
             worker's memory share is enforced and returned between tests
  faults     every fault that fires off the CPU, through the kill matrix on cpu,DEVICE
  crossdev   the cross-device property alone, against a fault injected on DEVICE only: it must fail
It writes OUT/summary.json and OUT/steps.log, and exits 0 only if every step met its expectation.
Merge OUT/run/results.jsonl with a CPU run elsewhere: python -m reports.merge a.jsonl b.jsonl -o x.html
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from reports.schema import atomic_write
from tools.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
# Per device type: a fault that fires only there, and the cross-device case it must trip.
CROSS_DEVICE_FAULT = {
    "cuda": ("matmul_drift_on_cuda", "matmul.matmul_semantics"),
    "meta": ("softmax_wrong_dtype_off_cpu", "softmax.range_and_sum"),
}


class MemorySampler(threading.Thread):
    """Largest device memory in use (MiB, all processes) seen by nvidia-smi while a step runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib: int | None = None
        self._halt = threading.Event()
        self.available = shutil.which("nvidia-smi") is not None

    def run(self):
        while self.available and not self._halt.wait(0.5):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            if out and all(v.strip().isdigit() for v in out):
                self.peak_mib = max(self.peak_mib or 0, max(int(v) for v in out))

    def stop(self):
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)


STEPS = ("suite", "compiled", "selftests", "faults", "crossdev")
# Why a CUDA-only behaviour may be skipped on a GPU machine and the run still meet its bar: the
# machine has one GPU, or the behaviour holds on other torch releases only.
ACCEPTED_SKIPS = ("needs two CUDA devices", "holds only on torch")


def run_step(name: str, argv: list[str], log, progress: Progress, timeout: float = 540) -> dict:
    progress.starting(name)
    start = time.perf_counter()
    log.write(f"\n===== {name}: {' '.join(argv)}\n")
    log.flush()
    # A session of its own, so a step that runs out of time goes with all its xdist workers.
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, "CI": "true"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = "timeout"
    wall = round(time.perf_counter() - start, 1)
    progress.finished(f"{name} rc={rc} {wall}s")
    return {"rc": rc, "wall_s": wall}


def summarise_run(path: Path) -> dict:
    """Per-device-type status counts, busy seconds and the largest per-test CUDA peak."""
    from reports.schema import BAD, load

    source = load(path)
    header, results = source.header, source.results
    counts: dict[str, Counter] = {}
    seconds: Counter = Counter()
    for r in results:
        kind = (r.get("device") or "none").split(":")[0]
        counts.setdefault(kind, Counter())[r["status"]] += 1
        seconds[kind] += r.get("duration") or 0.0
    peaks = [r["cuda_peak_mb"] for r in results if r.get("cuda_peak_mb") is not None]
    failures = [
        {"nodeid": r["nodeid"], "status": r["status"], "error": (r.get("error") or "")[:300]}
        for r in results
        if r["status"] in BAD
    ]
    return {
        "environment": {
            k: header.get(k) for k in ("torch", "cuda", "cudnn", "gpus", "python", "hypothesis", "profile", "seed", "devices")
        },
        "counts": {k: dict(v) for k, v in counts.items()},
        "busy_s": {k: round(v, 1) for k, v in seconds.items()},
        "largest_test_cuda_peak_mb": max(peaks, default=None),
        "failures": failures,
    }


def cuda_only_statuses(path: Path, device_type: str = "cuda") -> dict[str, str]:
    """Every CUDA-only behaviour of the catalogue (needs = "cuda") -> the status of its items on
    `device_type` in the results at `path`: the worst of them by severity, "skipped: REASON" where all
    were skipped, or "not run" where the run has none."""
    from conformance import catalogue
    from reports.schema import SEVERITY, load

    by_behaviour: dict[str, list[dict]] = {}
    for r in load(path).results:
        if (r.get("device") or "").split(":")[0] == device_type:
            by_behaviour.setdefault(r.get("behaviour"), []).append(r)
    statuses = {}
    for b in catalogue.behaviours().values():
        if b.needs != "cuda":
            continue
        items = by_behaviour.get(b.id, [])
        worst = min((r["status"] for r in items), key=SEVERITY.index, default="not run")
        if worst == "skipped":
            worst = f"skipped: {next(r.get('reason') or '' for r in items if r['status'] == 'skipped')}"
        statuses[b.id] = worst
    return statuses


def cuda_only_met(statuses: dict[str, str]) -> bool:
    """Every CUDA-only behaviour passed, or was skipped for an accepted reason (ACCEPTED_SKIPS)."""
    return bool(statuses) and all(
        s == "passed" or (s.startswith("skipped: ") and s.removeprefix("skipped: ").startswith(ACCEPTED_SKIPS))
        for s in statuses.values()
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.gpu_acceptance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the evidence (made if missing)")
    parser.add_argument(
        "--device", default="cuda", choices=sorted(CROSS_DEVICE_FAULT), help="the device checked beside the CPU (default: cuda)"
    )
    parser.add_argument("--workers", type=int, default=min(8, max(2, (os.cpu_count() or 2) // 2)))
    parser.add_argument("--max-examples", type=int, default=None, help="override the ci profile's count")
    parser.add_argument(
        "--behaviour",
        default=None,
        metavar="ID[,ID...]",
        help="run only these behaviours or areas in the suite step (a dry run on meta "
        "wants `devices`: most numeric behaviours mean nothing on meta)",
    )
    parser.add_argument("--label", default=None, help="the run's name in merged reports")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(
            4,
            f"{parser.prog}: error: CUDA is not available here (torch {torch.__version__}); "
            "use --device meta for a dry run of the plumbing\n",
        )
    args.out.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m"]
    examples = [f"--max-examples={args.max_examples}"] if args.max_examples else []
    chosen = [f"--behaviour={args.behaviour}"] if args.behaviour else []
    label = args.label or f"{args.device} torch {torch.__version__}"
    summary: dict = {"device": args.device, "workers": args.workers, "steps": {}}
    progress = Progress(len(STEPS))
    with (args.out / "steps.log").open("w", encoding="utf-8") as log:
        sampler = MemorySampler()
        sampler.start()
        step = run_step(
            "suite",
            [
                *py,
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                str(args.workers),
                f"--device=cpu,{args.device}",
                f"--report-dir={args.out / 'run'}",
                f"--source-label={label}",
                *examples,
                *chosen,
            ],
            log,
            progress,
        )
        sampler.stop()
        results = args.out / "run" / "results.jsonl"
        if results.exists():
            step.update(summarise_run(results))
            step["cuda_only"] = cuda_only_statuses(results, args.device)
        step["device_memory_used_peak_mib"] = sampler.peak_mib
        # a dry run on meta has no CUDA-only behaviour to run
        step["met"] = step["rc"] == 0 and (args.device != "cuda" or cuda_only_met(step.get("cuda_only", {})))
        summary["steps"]["suite"] = step

        step = run_step(
            "compiled",
            [
                *py,
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                str(args.workers),
                "--compile=inductor",
                f"--device={args.device}",
                f"--report-dir={args.out / 'compiled'}",
                f"--source-label={label} inductor",
                *examples,
                *chosen,
                "conformance/test_compiled.py",
                "conformance/test_compiled_inputs.py",
            ],
            log,
            progress,
        )
        compiled = args.out / "compiled" / "results.jsonl"
        if compiled.exists():
            step.update({k: v for k, v in summarise_run(compiled).items() if k in ("counts", "busy_s", "failures")})
        step["met"] = step["rc"] == 0
        summary["steps"]["compiled"] = step

        step = run_step(
            "selftests", [*py, "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/test_gpu_robustness.py"], log, progress
        )
        step["met"] = step["rc"] == 0
        summary["steps"]["selftests"] = step

        from conformance.faults import catalogue

        off_cpu = sorted(f.id for f in catalogue().values() if f.fires_on(args.device) and not f.fires_on("cpu"))
        step = run_step(
            "faults",
            [
                *py,
                "tools.killmatrix",
                "--faults",
                ",".join(off_cpu),
                "--device",
                f"cpu,{args.device}",
                "--json",
                str(args.out / "faults.json"),
            ],
            log,
            progress,
        )
        if (args.out / "faults.json").exists():
            kill = json.loads((args.out / "faults.json").read_text())
            step["summary"] = kill["summary"]
            step["per_fault"] = {r["fault"]: r["status"] for r in kill["results"]}
        step["met"] = step["rc"] == 0 and bool(step.get("summary", {}).get("killed"))
        summary["steps"]["faults"] = step

        fault, behaviour = CROSS_DEVICE_FAULT[args.device]
        step = run_step(
            "crossdev",
            [
                *py,
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--no-report",
                f"--device={args.device}",
                f"--inject-fault={fault}",
                f"--behaviour={behaviour}",
                "conformance/test_cross_device.py",
            ],
            log,
            progress,
        )
        step.update(fault=fault, behaviour=behaviour, met=step["rc"] == 1)  # 1: tests failed, as they must
        summary["steps"]["crossdev"] = step

    busy = summary["steps"]["suite"].get("busy_s", {})
    if busy.get("cpu") and busy.get(args.device):
        summary["device_over_cpu_busy"] = round(busy[args.device] / busy["cpu"], 3)
    ok = all(s["met"] for s in summary["steps"].values())
    summary["all_met"] = ok
    atomic_write(args.out / "summary.json", json.dumps(summary, indent=1))
    for name, s in summary["steps"].items():
        print(f"{name:10} {'met' if s['met'] else 'NOT MET':8} rc={s['rc']} {s['wall_s']:7.1f}s")
    print(
        json.dumps(
            {
                k: summary["steps"]["suite"].get(k)
                for k in ("counts", "busy_s", "largest_test_cuda_peak_mb", "device_memory_used_peak_mib")
            }
        )
    )
    cuda_only = summary["steps"]["suite"].get("cuda_only", {})
    if cuda_only:
        print(f"CUDA-only behaviours ({len(cuda_only)}):")
        for behaviour, status in cuda_only.items():
            print(f"  {behaviour:55} {status}")
    print(f"evidence in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
