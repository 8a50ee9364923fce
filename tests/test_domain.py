"""Every input class a behaviour declares (its catalogue `domain`) is reached by one ci-profile run."""

import re
from collections import Counter, defaultdict

from conformance import catalogue
from tests.helpers import ROOT, header_and_results, run_pytest


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


# Arguments that draw less than a strategy's full domain: a non-contiguous-excluding layout list,
# value bounds, shapes without empty sides or without 0-d, dims counted from 0 only.
_NARROWING = re.compile(
    r"layouts=\(|\b(low|high)=(?!st\.)|min_side=[1-9]|min_dims=[1-9]|st\.integers\(0, [\w.]*ndim|range\([\w.]*ndim\)"
)


def test_every_narrowed_domain_says_which_documented_sentence_narrows_it():
    """A behaviour test that draws a dimension, size, value or layout from less than its strategy's
    full domain carries a comment saying why, on that line or just above it (issue: every
    argument over its whole documented domain)."""
    silent = []
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            code = line.split("#", 1)[0]
            if _NARROWING.search(code):
                above = lines[max(0, number - 4) : number - 1]
                if "#" not in line and not any(a.strip().startswith("#") for a in above):
                    silent.append(f"{path.name}:{number}: {line.strip()}")
    assert not silent, "narrowed without a comment:\n" + "\n".join(silent)


# Values that reach the formula: in these areas every behaviour whose result is a function of its
# input values declares the magnitude classes (specs(magnitudes=True): around 0, around 1, large),
# and the test above holds that one ci run reaches each. The others say why their values do not
# matter. More areas join as their strategies draw magnitudes: sums of products (matmul, einsum,
# cdist's Gram-matrix form) cancel, and their references' tolerances must first scale with the
# operands' magnitude before they can.
VALUE_AREAS = {"losses", "pointwise"}
VALUES_DO_NOT_MATTER = {
    "losses.nll_all_ignored_observed": "every target is ignored: the recorded value does not depend on the logits",
    "losses.nll_worked_example": "the docs' fixed worked example",
    "pointwise.round_integers_copy": "integral inputs: the magnitude classes scale floating values only",
    "pointwise.round_integers_decimals_zero": "integral inputs: the magnitude classes scale floating values only",
    "pointwise.div_integers": "integral inputs: the magnitude classes scale floating values only",
    "pointwise.byte_is_uint8": "floating values stay in uint8's range [0, 256), where the conversion is defined",
    "pointwise.is_floating_point": "a dtype query: the values do not enter the result",
}


def test_value_dependent_behaviours_reach_every_magnitude_class():
    magnitudes = {f"magnitude={m}" for m in ("small", "unit", "large")}
    missing = [
        b.id
        for b in catalogue.behaviours().values()
        if b.area in VALUE_AREAS and b.id not in VALUES_DO_NOT_MATTER and not magnitudes <= set(b.domain)
    ]
    assert not missing, f"value-dependent behaviours that do not declare every magnitude class: {missing}"
    stale = [b for b in VALUES_DO_NOT_MATTER if b not in catalogue.behaviours()]
    assert not stale, stale
