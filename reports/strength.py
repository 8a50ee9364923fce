"""Strength: the automatic API mutants' verdicts per behaviour, from the files the mutants plugin
writes (Note [Automatic API mutants] in conformance/mutants/__init__.py). Never imports torch.

A mutant of a behaviour ends as one of:
  killed          an item of the behaviour failed with it installed
  survived        it fired (broke at least one call the tests made) and every item passed
  equivalent      it survived, and the catalogue entry says why that break cannot change the
                  documented behaviour (`equivalent = {"operator[param]@class" = "reason"}`)
  unreached       a one-class variant whose input class the tests never drew at a call the
                  whole operator applied to: a gap in the generated domain, listed, not counted
  not applicable  it never fired: the reason the calls gave (a result that is no tensor, ...)

strength = killed / (killed + survived); equivalents are counted apart, as a share of the
applicable pairs (killed + survived + equivalent).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from conformance import catalogue

STATUSES = ("killed", "survived", "equivalent", "unreached", "not applicable")


class StrengthError(ValueError):
    pass


def load_workers(paths: list[Path]) -> dict:
    """Merge the plugin's per-worker files (or directories of them) into one record per behaviour."""
    files = []
    for path in paths:
        files.extend(sorted(path.glob("auto-*.json")) if path.is_dir() else [path])
    if not files:
        raise StrengthError(f"no auto-*.json files in {', '.join(map(str, paths))}")
    merged: dict[str, dict] = {}
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StrengthError(f"{file}: not a mutants file ({exc})") from None
        if not isinstance(data, dict):
            raise StrengthError(f"{file}: not a mutants file (expected an object of behaviours)")
        for behaviour, record in data.items():
            into = merged.setdefault(behaviour, {"items": [], "stock_failures": [], "mutants": {}, "no_mutants": {}})
            into["items"] += record.get("items", [])
            into["stock_failures"] += record.get("stock_failures", [])
            into["no_mutants"].update(record.get("no_mutants", {}))
            for mutant_id, m in record.get("mutants", {}).items():
                known = into["mutants"].setdefault(
                    mutant_id, {**m, "tally": {"calls": 0, "in_class": 0, "fired": 0, "reasons": {}}}
                )
                known["killed_by"] = known.get("killed_by") or m.get("killed_by")
                for k in ("calls", "in_class", "fired"):
                    known["tally"][k] += m["tally"][k]
                for reason, n in m["tally"].get("reasons", {}).items():
                    known["tally"]["reasons"][reason] = known["tally"]["reasons"].get(reason, 0) + n
    return merged


def _equivalence(behaviour, mutant: dict) -> str | None:
    declared = dict(behaviour.equivalent)
    key = mutant["key"]  # operator[param]@class
    whole = key.split("@")[0]
    for candidate in (f"{mutant['api']}:{key}", f"{mutant['api']}:{whole}", key, whole, mutant["operator"]):
        if candidate in declared:
            return declared[candidate]
    return None


def verdicts(merged: dict) -> dict:
    """Per behaviour: every mutant's status (and why), the counts and the strength figure."""
    known = catalogue.behaviours()
    out = {}
    for behaviour_id, record in sorted(merged.items()):
        behaviour = known.get(behaviour_id)
        mutants = record["mutants"]
        rows = {}
        for mutant_id, m in mutants.items():
            tally = m["tally"]
            whole = mutants.get(mutant_id.split("@")[0]) if m.get("class") else None
            reasons = tally.get("reasons") or {}
            if m.get("killed_by"):
                status, why = "killed", f"{m['killed_by']['item']}: {m['killed_by']['error']}"
                if behaviour is not None and _equivalence(behaviour, m):
                    why += " (declared equivalent, but killed: the declaration is stale)"
            elif tally["fired"]:
                reason = _equivalence(behaviour, m) if behaviour is not None else None
                status, why = (
                    ("equivalent", reason) if reason else ("survived", f"fired on {tally['fired']} calls; every item passed")
                )
            elif (
                m.get("class")
                and tally["in_class"] == 0
                and whole is not None
                and (whole["tally"]["fired"] or whole.get("killed_by"))
            ):
                status, why = "unreached", f"the tests never drew a {m['class']} input where the operator applies"
            else:
                top = max(reasons, key=reasons.get) if reasons else "the tests never made this call"
                status, why = "not applicable", top
            rows[mutant_id] = {"status": status, "why": why, "operator": m["operator"], "kind": m["kind"], "api": m["api"]}
        counts = Counter(r["status"] for r in rows.values())
        applicable = counts["killed"] + counts["survived"]
        out[behaviour_id] = {
            "area": behaviour_id.split(".")[0],
            "counts": {s: counts.get(s, 0) for s in STATUSES},
            "strength": round(counts["killed"] / applicable, 4) if applicable else None,
            "no_mutants": record["no_mutants"],
            "stock_failures": sorted(set(record["stock_failures"])),
            "items": len(set(record["items"])),
            "mutants": rows,
        }
    return out


def summarise(per_behaviour: dict) -> dict:
    """The figures the issue asks for: kill rate over (behaviour, applicable operator) pairs, the
    share declared equivalent, per area and overall."""

    def figures(rows) -> dict:
        counts = Counter()
        for r in rows:
            counts.update(r["counts"])
        applicable = counts["killed"] + counts["survived"]
        with_equivalent = applicable + counts["equivalent"]
        return {
            "behaviours": len(rows),
            **{s: counts.get(s, 0) for s in STATUSES},
            "kill_rate": round(counts["killed"] / applicable, 4) if applicable else None,
            "equivalent_share": round(counts["equivalent"] / with_equivalent, 4) if with_equivalent else None,
        }

    by_area = defaultdict(list)
    for row in per_behaviour.values():
        by_area[row["area"]].append(row)
    operators = defaultdict(Counter)
    for row in per_behaviour.values():
        for m in row["mutants"].values():
            operators[m["operator"]][m["status"]] += 1
    return {
        "overall": figures(list(per_behaviour.values())),
        "areas": {area: figures(rows) for area, rows in sorted(by_area.items())},
        "operators": {op: dict(c) for op, c in sorted(operators.items())},
    }


def load(path: Path) -> dict:
    """A strength file written by `python -m tools.killmatrix --auto --json PATH`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StrengthError(f"{path}: not a strength file ({exc})") from None
    if not isinstance(data, dict) or "behaviours" not in data or "summary" not in data:
        raise StrengthError(f"{path}: not a strength file (expected 'summary' and 'behaviours')")
    return data
