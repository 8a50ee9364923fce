"""The upgrade report: what changed in documented behaviour between two torch releases.

    python -m reports.diff OLD NEW [--html OUT.html] [--markdown OUT.md]

OLD and NEW are results files (results.jsonl) or report directories (a directory's own
results.jsonl, or, for a merged one, the results.jsonl of each of its subdirectories). Items are
compared by (behaviour, device, dtype, mode), several results of one item on one side counting as
the most severe status and the union of their fingerprints. Per area, the report lists

    status changes      passed -> failed (regressed), failed -> passed (fixed), a known deviation
                        that passed (stale), passed -> expected failure, passed -> skipped, ...
    fingerprints        a declared operation's result dtypes or raised errors that changed
    warnings            warnings that appeared or disappeared (Note [Fingerprints])
    observations        record_observation values that changed
    new and gone        items (or whole behaviours) on one side only

each row with the behaviour's statement, both sides' values under their torch versions, and the
NEW side's repro line. Without --html or --markdown the Markdown goes to standard output.

A missing or corrupt input is a one-line error (exit 2), and no output is written; each output is
written whole to a temporary file and then moved into place. Never imports torch.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from conformance import catalogue
from reports import schema

# Kinds of change, most important first: the order of the headline, the tables and the rows.
KINDS = {
    "regressed": "regressed (now fails)",
    "stale": "known deviation went stale (now passes)",
    "deviates": "now a known deviation",
    "fixed": "fixed (now passes)",
    "status": "status changed",
    "result": "result dtypes or error changed",
    "warning+": "warning appeared",
    "warning-": "warning disappeared",
    "observation": "observation changed",
    "new": "new",
    "gone": "gone",
}
MARKDOWN_ROWS = 5  # rows of each kind in the Markdown; the HTML page has them all
_RANDOM_PROFILES = ("default", "thorough", "quick")


class DiffError(ValueError):
    """An input that cannot be compared; the message names it."""


@dataclass
class Item:
    """One (behaviour, device, dtype, mode) on one side: its results taken together."""

    status: str | None = None
    stale: str | None = None
    reason: str | None = None
    repro_line: str | None = None
    result: set[str] | None = None  # None: no side recorded it (a results file from before fingerprints)
    warnings: set[str] | None = None
    observations: dict[str, set[str]] = field(default_factory=dict)

    def add(self, r: dict) -> None:
        if schema.more_severe(r["status"], self.status):
            self.status, self.reason, self.repro_line = r["status"], r.get("reason"), r.get("repro_line")
        self.stale = self.stale or r.get("stale_deviation")
        fingerprint = r.get("fingerprint")
        if isinstance(fingerprint, dict):
            for key in ("result", "warnings"):
                if isinstance(fingerprint.get(key), list):
                    setattr(self, key, (getattr(self, key) or set()) | {str(v) for v in fingerprint[key]})
        for what, value in (r.get("observations") or {}).items():
            self.observations.setdefault(str(what), set()).add(str(value))


@dataclass
class Side:
    path: Path
    sources: list[schema.Source]
    items: dict[tuple, Item]

    @property
    def torch(self) -> str:
        return ", ".join(sorted({str(s.header.get("torch") or "?") for s in self.sources}))

    @property
    def profiles(self) -> set[str]:
        return {str(s.header.get("profile") or "?") for s in self.sources}

    @property
    def faults(self) -> set[str]:
        return {s.header["fault"] for s in self.sources if s.header.get("fault")}


def results_files(path: Path) -> list[Path]:
    """A results file, a report directory's results.jsonl, or a merged directory's per-run ones."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    if (path / "results.jsonl").is_file():
        return [path / "results.jsonl"]
    found = sorted(path.glob("*/results.jsonl"))
    if not found:
        raise DiffError(f"{path}: a directory with no results.jsonl, in it or in its subdirectories")
    return found


def load_side(path: Path) -> Side:
    sources = [schema.load(p) for p in results_files(path)]
    items: dict[tuple, Item] = defaultdict(Item)
    for source in sources:
        for r in source.results:
            if r.get("behaviour") is None:
                continue  # a worker that died before it knew its item: nothing to compare by
            items[(r["behaviour"], r.get("device") or "", r.get("dtype") or "", r.get("mode") or "eager")].add(r)
    return Side(Path(path), sources, dict(items))


def _label(key: tuple) -> str:
    _, device, dtype, mode = key
    return " ".join(x for x in (device or "any device", dtype or "any dtype", f"[{mode}]" if mode != "eager" else "") if x)


def _status_text(item: Item | None) -> str:
    if item is None:
        return "absent"
    text = item.status or "?"
    if item.stale:
        text += " (a known deviation that passed: stale)"
    elif item.reason and item.status in ("skipped", "expected failure"):
        text += f": {item.reason}"
    return text


def _status_kind(old: Item, new: Item) -> str | None:
    bad_before, bad_now = old.status in schema.BAD, new.status in schema.BAD
    if new.stale and not old.stale:
        return "stale"
    if bad_now and not bad_before:
        return "regressed"
    if bad_before and new.status == "passed":
        return "fixed"
    if new.status == "expected failure" and old.status == "passed":
        return "deviates"
    if old.status != new.status:
        return "status"
    return None


def _values(values: set[str] | None) -> str:
    return ", ".join(sorted(values)) if values else "none"


def item_changes(key: tuple, old: Item, new: Item) -> list[dict]:
    """The rows of one item present on both sides."""
    rows = []
    kind = _status_kind(old, new)
    if kind:
        rows.append({"kind": kind, "what": "status", "old": _status_text(old), "new": _status_text(new)})
    ran = old.status not in ("skipped", "not run") and new.status not in ("skipped", "not run")
    if ran and old.result is not None and new.result is not None and old.result != new.result:
        rows.append({"kind": "result", "what": "result", "old": _values(old.result), "new": _values(new.result)})
    if ran and old.warnings is not None and new.warnings is not None:
        for text in sorted(new.warnings - old.warnings):
            rows.append({"kind": "warning+", "what": text, "old": "not raised", "new": "raised"})
        for text in sorted(old.warnings - new.warnings):
            rows.append({"kind": "warning-", "what": text, "old": "raised", "new": "not raised"})
    for what in sorted(set(old.observations) | set(new.observations)):
        before, after = old.observations.get(what), new.observations.get(what)
        if before != after and (ran or (before is not None and after is not None)):
            rows.append({"kind": "observation", "what": what, "old": _values(before), "new": _values(after)})
    return rows


def compare(old: Side, new: Side) -> dict:
    """The report's model: a headline, per-area counts and, per area, the behaviours that changed
    with their rows."""
    known = catalogue.behaviours()
    per_behaviour: dict[str, list[tuple]] = defaultdict(list)
    for key in set(old.items) | set(new.items):
        per_behaviour[key[0]].append(key)
    behaviours: dict[str, list[dict]] = defaultdict(list)  # area -> behaviour entries
    for behaviour, keys in per_behaviour.items():
        keys.sort()
        b = known.get(behaviour)
        rows = []
        in_old = [k for k in keys if k in old.items]
        in_new = [k for k in keys if k in new.items]
        common = {
            "behaviour": behaviour,
            "statement": b.statement if b else "(not in this catalogue)",
            "old_torch": old.torch,
            "new_torch": new.torch,
        }
        if not in_old or not in_new:  # the whole behaviour is new or gone: one row, not one per item
            side = new if in_new else old
            statuses = Counter(side.items[k].status for k in keys)
            text = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            first = side.items[keys[0]]
            rows.append(
                {
                    **common,
                    "kind": "new" if in_new else "gone",
                    "item": f"{len(keys)} item{'s' if len(keys) != 1 else ''}",
                    "what": "behaviour",
                    "old": text if not in_new else "absent",
                    "new": text if in_new else "absent",
                    "repro_line": first.repro_line if in_new else None,
                }
            )
        else:
            for key in keys:
                before, after = old.items.get(key), new.items.get(key)
                base = {**common, "item": _label(key), "repro_line": after.repro_line if after else None}
                if before is None or after is None:
                    rows.append(
                        {
                            **base,
                            "kind": "new" if before is None else "gone",
                            "what": "item",
                            "old": _status_text(before),
                            "new": _status_text(after),
                        }
                    )
                    continue
                rows.extend({**base, **row} for row in item_changes(key, before, after))
        if not rows:
            continue
        order = list(KINDS)
        rows.sort(key=lambda r: (order.index(r["kind"]), r["item"], r["what"]))
        area = b.area if b else behaviour.split(".")[0]
        behaviours[area].append(
            {
                **common,
                "doc": b.doc if b else None,
                "releases": b.releases if b else None,
                "changed": b.changed if b else None,
                "old_status": _worst(old, in_old),
                "new_status": _worst(new, in_new),
                "rows": rows,
                "kinds": Counter(r["kind"] for r in rows),
            }
        )
    titles = {a.name: a.title for a in catalogue.areas()}
    order = [a.name for a in catalogue.areas()]
    areas = []
    for name, entries in behaviours.items():
        entries.sort(key=lambda e: (_rank(e["kinds"]), e["behaviour"]))
        counts = Counter()
        for e in entries:
            counts.update(e["kinds"])
        areas.append({"name": name, "title": titles.get(name, name), "behaviours": entries, "counts": counts})
    # the areas with the weightiest change first (regressions before fixes before new items), then catalogue order
    areas.sort(key=lambda a: (_rank(a["counts"]), a["name"] not in order, order.index(a["name"]) if a["name"] in order else 0))
    rows = [r for a in areas for e in a["behaviours"] for r in e["rows"]]
    totals = Counter(r["kind"] for r in rows)
    behaviour_totals = Counter()
    for a in areas:
        for e in a["behaviours"]:
            behaviour_totals.update(set(e["kinds"]))
    return {
        "old": _side_summary(old, "OLD"),
        "new": _side_summary(new, "NEW"),
        "kinds": KINDS,
        "areas": areas,
        "rows": rows,
        "totals": totals,
        "behaviour_totals": behaviour_totals,
        "headline": _headline(old, new, totals, behaviour_totals),
        "notes": _notes(old, new),
        "compared": len(set(old.items) & set(new.items)),
    }


def _rank(kinds) -> int:
    return min(list(KINDS).index(k) for k in kinds)


def _worst(side: Side, keys: list[tuple]) -> str:
    statuses = Counter(side.items[k].status for k in keys)
    return next((s for s in schema.SEVERITY if statuses.get(s)), "absent")


def _side_summary(side: Side, name: str) -> dict:
    return {
        "name": name,
        "torch": side.torch,
        "path": str(side.path),
        "sources": [
            {
                "label": s.label,
                "torch": s.header.get("torch"),
                "profile": s.header.get("profile"),
                "devices": ", ".join(s.header.get("devices") or ()),
                "start": s.header.get("start"),
                "incomplete": s.incomplete,
            }
            for s in side.sources
        ],
        "items": len(side.items),
    }


def _headline(old: Side, new: Side, totals: Counter, behaviours: Counter) -> str:
    if not totals:
        return f"Nothing changed in the {len(set(old.items) & set(new.items))} items both runs have."
    parts = []
    for kind, label in KINDS.items():
        if totals.get(kind):
            n = behaviours[kind]
            parts.append(f"{label}: {totals[kind]} in {n} behaviour{'s' if n != 1 else ''}")
    return "; ".join(parts).capitalize() + "."


def _notes(old: Side, new: Side) -> list[str]:
    """What makes the two runs less comparable, said up front."""
    notes = []
    for side, name in ((old, "OLD"), (new, "NEW")):
        for s in side.sources:
            if s.incomplete:
                notes.append(f"The {name} run {s.label} is incomplete: items it never reached show as new or gone.")
        ran = [i for i in side.items.values() if i.status not in ("skipped", "not run")]
        if ran and all(i.warnings is None for i in ran):
            notes.append(
                f"The {name} results carry no fingerprints (written before they were recorded):"
                " result dtypes and warnings are not compared."
            )
        if side.faults:
            notes.append(f"The {name} run injected a fault ({', '.join(sorted(side.faults))}): its failures are the fault's.")
    if old.profiles != new.profiles:
        notes.append(
            f"The runs used different profiles ({', '.join(sorted(old.profiles))} against {', '.join(sorted(new.profiles))})."
        )
    if (old.profiles | new.profiles) & set(_RANDOM_PROFILES):
        notes.append(
            "A randomized profile drew different examples on each side: a fingerprint or warning seen on one side only"
            " may come from a different example. Compare runs of the derandomized ci profile (CI=true)."
        )
    return notes


def markdown(model: dict) -> str:
    """A short Markdown summary for a pull request: the headline, counts per area, and the first
    rows of each kind."""
    old, new = model["old"]["torch"], model["new"]["torch"]
    lines = [f"## Upgrade report: torch {old} → {new}", "", f"**What changed:** {model['headline']}", ""]
    lines += [f"> {note}" for note in model["notes"]] + ([""] if model["notes"] else [])
    kinds = [k for k in KINDS if model["totals"].get(k)]
    if not kinds:
        return "\n".join(lines).rstrip() + "\n"
    short = {"warning+": "warning +", "warning-": "warning −", "deviates": "deviates", "observation": "observed"}
    lines.append("| area | " + " | ".join(short.get(k, k) for k in kinds) + " |")
    lines.append("| --- |" + " ---: |" * len(kinds))
    for area in model["areas"]:
        lines.append(f"| {area['name']} | " + " | ".join(str(area["counts"].get(k, "")) for k in kinds) + " |")
    lines.append("")
    for kind in kinds:
        rows = [r for r in model["rows"] if r["kind"] == kind]
        lines.append(f"### {KINDS[kind].capitalize()} ({len(rows)})")
        lines.append("")
        for r in rows[:MARKDOWN_ROWS]:
            what = "" if r["what"] in ("status", "item", "behaviour") else f" {_md(r['what'])}:"
            statement = textwrap.shorten(r["statement"], 110, placeholder=" …")
            lines.append(
                f"- `{r['behaviour']}` {r['item']}:{what} {_md(r['old'])} (torch {old}) → {_md(r['new'])} (torch {new})."
                f" _{_md(statement)}_" + (f" Repro: `{r['repro_line']}`" if r.get("repro_line") else "")
            )
        if len(rows) > MARKDOWN_ROWS:
            lines.append(f"- … and {len(rows) - MARKDOWN_ROWS} more (the HTML report has them all).")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Text for one Markdown line: no line breaks, no table pipes, no stray emphasis."""
    text = " ".join(str(text).split())
    text = textwrap.shorten(text, 200, placeholder=" …")
    return text.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*").replace("`", "'")


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)


def html(model: dict) -> str:
    return _ENV.get_template("diff.html.j2").render(**model)


def main(argv=None, prog: str = "python -m reports.diff") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="What changed in documented behaviour between two runs (two torch releases, say)."
    )
    parser.add_argument("old", type=Path, help="the OLD run: a results.jsonl file or a report directory")
    parser.add_argument("new", type=Path, help="the NEW run: a results.jsonl file or a report directory")
    parser.add_argument("--html", type=Path, default=None, metavar="OUT.html", help="write the self-contained HTML page here")
    parser.add_argument(
        "--markdown", type=Path, default=None, metavar="OUT.md", help="write the short Markdown summary here (a pull request's)"
    )
    args = parser.parse_args(argv)
    outputs = [p for p in (args.html, args.markdown) if p is not None]
    if len(outputs) == 2 and args.html.resolve() == args.markdown.resolve():
        parser.exit(2, f"{prog}: error: --html and --markdown name one file, {args.html}\n")
    for out in outputs:
        if out.exists() and out.is_dir():
            parser.exit(2, f"{prog}: error: output {out} is a directory\n")
        if any(out.resolve() == p.resolve() for side in (args.old, args.new) for p in _quiet_files(side)):
            parser.exit(2, f"{prog}: error: output {out} is one of the inputs\n")
    try:
        model = compare(load_side(args.old), load_side(args.new))
        summary = markdown(model)
        texts = {out: html(model) if out is args.html else summary for out in outputs}  # all made before any is written
    except (schema.ResultsError, DiffError) as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    if not outputs:
        sys.stdout.write(summary)
        return 0
    for out in outputs:
        try:
            schema.atomic_write(out, texts[out])
        except OSError as exc:
            parser.exit(2, f"{prog}: error: cannot write {out} ({exc.strerror or exc})\n")
        print(f"wrote {out}")
    return 0


def _quiet_files(path: Path) -> list[Path]:
    try:
        return results_files(path)
    except DiffError:
        return []


if __name__ == "__main__":
    sys.exit(main())
