"""Run the suite's own pytest in a subprocess, the way a user would."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from conformance.harness import PLUGINS

ROOT = Path(__file__).resolve().parent.parent
# pytest as a user runs it in this checkout, with no cache written into it
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"))


def run_pytest(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    if not any(a.startswith("--report-dir") or a == "--no-report" for a in args):
        args = ("--no-report", *args)  # never overwrite the checkout's own report
    return subprocess.run(
        [*PYTEST, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


SUITE_PLUGINS = tuple(arg for plugin in (*PLUGINS, "reports.stats", "reports.recorder") for arg in ("-p", plugin))


def run_throwaway(tmp_path: Path, source: str, *args: str, plugins: tuple = (), device: str = "cpu"):
    """Run a throwaway behaviour test module with the suite's plugins (and `plugins`, modules
    importable from tmp_path); the report goes to tmp_path/report, the rootdir stays the checkout."""
    module = tmp_path / "test_throwaway.py"
    module.write_text(textwrap.dedent(source))
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return run_pytest(
        *SUITE_PLUGINS, *plugins, f"--device={device}", f"--report-dir={tmp_path / 'report'}", *args, str(module), env=env
    )


def header_and_results(path: Path) -> tuple[dict, list[dict]]:
    """A results file read as plain JSON lines: what the recorder wrote, unvalidated."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[0], lines[1:]


def throwaway_results(tmp_path: Path) -> tuple[dict, dict[str, dict]]:
    """The header and the results by test name (the part after ::) of a run_throwaway report."""
    header, results = header_and_results(tmp_path / "report" / "results.jsonl")
    return header, {r["nodeid"].split("::")[-1]: r for r in results}


def start_throwaway(tmp_path: Path, name: str, source: str, report: Path, *args: str) -> subprocess.Popen:
    """run_throwaway's command, started in the background from module `name`, reporting to `report`."""
    module = tmp_path / f"test_{name}.py"
    module.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [*PYTEST, *SUITE_PLUGINS, "--device=cpu", f"--report-dir={report}", "-p", "no:randomly", *args, str(module)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def first_failure(stdout: str, test: str) -> list[str]:
    """The lines of the first failure of `test` that pytest printed: after its "___ test[...] ___"
    rule, up to the next rule."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {test}[" in line)
    rule = [i for i in range(start + 1, len(lines)) if lines[i].startswith(("===", "---")) or re.fullmatch(r"_+ .* _+", lines[i])]
    end = min(rule, default=len(lines))
    return lines[start + 1 : end]
