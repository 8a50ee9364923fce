"""Every input class a behaviour declares (its catalogue `domain`) is reached by one ci-profile run."""

from collections import Counter, defaultdict

from conformance import catalogue
from tests.helpers import header_and_results, run_pytest


def test_every_declared_domain_class_is_reached_in_one_ci_run(tmp_path):
    declared = {b.id: b.domain for b in catalogue.behaviours().values() if b.domain}
    assert declared, "no behaviour declares a domain"
    done = run_pytest(
        "-n", "2", "--hypothesis-profile=ci", "--device=cpu", f"--behaviour={','.join(declared)}", f"--report-dir={tmp_path}"
    )
    assert done.returncode == 0, done.stdout[-2000:]
    _, results = header_and_results(tmp_path / "results.jsonl")
    reached = defaultdict(Counter)
    for r in results:
        reached[r["behaviour"]].update(r.get("features") or {})
    unreached = {b: [c for c in classes if not reached[b][c]] for b, classes in declared.items()}
    assert not any(unreached.values()), {b: c for b, c in unreached.items() if c}
