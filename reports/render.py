"""Render results.jsonl files into one self-contained HTML page. Never imports torch.

python -m reports.render conformance-report/results.jsonl -o conformance-report/index.html
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections import Counter, defaultdict
from pathlib import Path

import jinja2

from conformance import catalogue
from reports import schema

STATUSES, BAD = schema.STATUSES, schema.BAD
SYMBOL = {
    "passed": "✓",
    "failed": "✗",
    "error": "!",
    "crashed": "☠",
    "timeout": "◔",
    "expected failure": "≈",
    "skipped": "–",
    "not run": "∅",
}
# What the strategies promise to generate; a behaviour whose tests never drew one is flagged.
PROMISED = (
    [
        f"layout={n}"
        for n in ("contiguous", "transposed", "permuted", "sliced", "expanded", "offset", "channels_last", "as_strided")
    ]
    + [f"ndim={n}" for n in range(5)]
    + [f"size={b}" for b in ("0", "1", "2-16", "17-128", ">128")]
)
MAX_FAILURES_SHOWN = 50
# What a behaviour that needs what a run lacked (the catalogue's `needs`) shows instead of a status.
NOT_RUN_NEEDS = {"cuda": "not run: needs CUDA"}


def _cell_status(counts: Counter) -> str:
    for status in schema.SEVERITY:
        if counts.get(status):
            return status
    return "not run"


def build(sources: list[schema.Source], strength: dict | None = None) -> dict:
    """The page's model: areas -> behaviours -> (source, device) rows x dtype cells; with a
    strength file (reports/strength.py), each behaviour's figure against the automatic mutants."""
    labels = [s.label for s in sources]
    if len(set(labels)) != len(labels):  # the same host twice: number them
        for i, s in enumerate(sources):
            s.label = f"{s.label} #{i + 1}"
    known = catalogue.behaviours()
    by_behaviour: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for index, source in enumerate(sources):
        for r in source.results:
            by_behaviour[r.get("behaviour")].append((index, r))
    summary = {}
    for index, source in enumerate(sources):
        for device in source.header.get("devices") or []:
            summary[(index, device)] = Counter()

    areas = []
    area_counts: dict[str, dict[tuple[int, str], Counter]] = {}
    # (area, column) -> the behaviours that ran there: what each mode and device covered
    covered: dict[tuple[str, tuple[int, str]], set[str]] = defaultdict(set)
    for area in catalogue.areas():
        behaviours = []
        columns = area_counts.setdefault(area.name, defaultdict(Counter))
        for b in area.behaviours:
            rows, dtypes, failures = {}, set(), []
            features = Counter()
            observed = defaultdict(set)
            examples = 0
            for index, r in by_behaviour.get(b.id, ()):
                device = r.get("device") or "?"
                if r.get("mode") not in (None, "eager"):  # each execution mode is a column group of its own
                    device = f"{device} [{r['mode']}]"
                dtype = r.get("dtype") or "—"
                dtypes.add(dtype)
                rows.setdefault((index, device), defaultdict(Counter))[dtype][r["status"]] += 1
                features.update(r.get("features") or {})
                for what, value in (r.get("observations") or {}).items():
                    observed[f"{what}: {value}"].add(f"{sources[index].label} {device}")
                examples += r.get("examples") or 0
                if r["status"] in BAD or r.get("stale_deviation"):
                    failures.append({"source": sources[index].label, "issue": issue_block(b, r, sources[index].header), **r})
            for index, source in enumerate(sources):  # catalogue behaviours with no result
                for device in source.header.get("devices") or []:
                    if (index, device) not in rows:
                        rows[(index, device)] = {"—": Counter({"not run": 1})}
                        dtypes.add("—")
            dtype_list = sorted(dtypes, key=lambda d: (d == "—", d))
            row_list = []
            statuses = Counter()
            for (index, device), cells in sorted(rows.items()):
                total = Counter()
                for counts in cells.values():
                    total.update(counts)
                statuses.update(total)
                summary.setdefault((index, device), Counter()).update(total)
                columns[(index, device)].update(total)
                ran = any(total[s] for s in STATUSES if s not in ("skipped", "not run"))
                if ran:
                    covered[(area.name, (index, device))].add(b.id)
                row_list.append(
                    {
                        "source": sources[index].label,
                        "device": device,
                        "needs": NOT_RUN_NEEDS[b.needs] if b.needs and not ran else None,
                        "statuses": " ".join(sorted(k.replace(" ", "-") for k in total)),
                        "cells": [_cell(cells.get(d)) for d in dtype_list],
                    }
                )
            never = [p for p in PROMISED if p not in features] if examples else []
            # the behaviour's declared input classes, each with whether this report's runs reached it
            domain = [(c, bool(features.get(c))) for c in b.domain] if examples else []
            # CUDA's own behaviour with no item that ran: not run, for want of CUDA (its items are
            # skipped, counted as skipped, and the behaviour is never shown as a pass)
            needs = NOT_RUN_NEEDS[b.needs] if b.needs and all(r["needs"] for r in row_list) else None
            behaviours.append(
                {
                    "b": b,
                    "rows": row_list,
                    "dtypes": dtype_list,
                    "needs": needs,
                    "status": "not run" if needs else _cell_status(statuses),
                    "statuses": " ".join(sorted({k.replace(" ", "-") for k in statuses} | ({"not-run"} if needs else set()))),
                    "devices": " ".join(sorted({r["device"] for r in row_list})),
                    "failures": failures[:MAX_FAILURES_SHOWN],
                    "more_failures": max(0, len(failures) - MAX_FAILURES_SHOWN),
                    "features": sorted(features.items()),
                    "observed": [(k, ", ".join(sorted(v))) for k, v in sorted(observed.items())],
                    "never": never,
                    "domain": domain,
                    "examples": examples,
                    "strength": _strength_of(strength, b.id),
                    "text": f"{b.id} {b.statement}".lower(),
                }
            )
        areas.append({"name": area.name, "title": area.title, "behaviours": behaviours})
    unknown = sorted(k for k in by_behaviour if k not in known)
    glance = _at_a_glance(sources, areas, area_counts, covered)
    summary_rows = [
        {"source": sources[i].label, "device": d, "counts": [(s, c[s]) for s in STATUSES if c.get(s)]}
        for (i, d), c in sorted(summary.items())
    ]
    return {
        "sources": sources,
        "areas": areas,
        "summary": summary_rows,
        "unknown": unknown,
        "statuses": STATUSES,
        "symbol": SYMBOL,
        "all_devices": sorted({r["device"] for r in summary_rows}),
        "all_dtypes": sorted({d for a in areas for b in a["behaviours"] for d in b["dtypes"] if d != "—"}),
        "total": sum(len(s.results) for s in sources),
        "api_coverage": api_coverage(),
        "strength": (strength or {}).get("summary"),
        **glance,
    }


SURVIVORS_SHOWN = 12


def _strength_of(strength: dict | None, behaviour_id: str) -> dict | None:
    """A behaviour's strength row for the page: the figure, the counts, and its survivors first."""
    row = (strength or {}).get("behaviours", {}).get(behaviour_id)
    if row is None:
        return None
    listed = [(m, r) for m, r in sorted(row["mutants"].items()) if r["status"] in ("survived", "equivalent", "unreached")]
    listed.sort(key=lambda pair: ("survived", "unreached", "equivalent").index(pair[1]["status"]))
    return {
        "figure": None if row["strength"] is None else f"{100 * row['strength']:.0f}%",
        "counts": row["counts"],
        "listed": listed[:SURVIVORS_SHOWN],
        "more": max(0, len(listed) - SURVIVORS_SHOWN),
    }


def issue_block(b: catalogue.Behaviour, r: dict, header: dict) -> str | None:
    """A real failure (no fault injected) with a proven script, as one Markdown block to paste
    into a PyTorch issue: the statement and its quote with the doc link, the script, what was
    observed against what the docs lead one to expect, and the environment (collect_env's summary
    where the run could take it)."""
    if r.get("status") not in BAD or not r.get("repro") or header.get("fault"):
        return None
    where = r.get("device") or "cpu"
    if r.get("mode") not in (None, "eager"):
        where += f", {r['mode']}"
    observed = (r.get("error") or "").strip() or f"the script raises {r.get('repro_fails_with', 'an error')}"
    backends = ", ".join(f"{x['module']} {x.get('version', '')}".strip() for x in header.get("backends") or ())
    environment = header.get("collect_env") or "\n".join(
        f"{k}: {v}"
        for k, v in (
            ("PyTorch version", header.get("torch")),
            ("CUDA used to build PyTorch", header.get("cuda") or "None"),
            ("GPU models", ", ".join(header.get("gpus") or ()) or "None"),
            ("Out-of-tree backends", backends or "None"),
            ("OS", header.get("platform")),
            ("Python version", header.get("python")),
        )
    )
    if backends and header.get("collect_env"):
        environment += f"\nOut-of-tree backends: {backends}"
    lines = [
        f"### {textwrap.shorten(b.statement.split('. ')[0].rstrip('.'), 90)}: not so on {where}, {r.get('dtype') or 'any dtype'}",
        "",
        b.statement,
        "",
        *([f'The documentation says: "{plain_rst(b.quote)}" ({b.doc})', ""] if b.quote else [f"Documentation: {b.doc}", ""]),
        "Reproduction (it raises where the documented behaviour breaks, runs to its end where it holds):",
        "",
        "```python",
        r["repro"].rstrip("\n"),
        "```",
        "",
        "Observed:",
        "",
        "```",
        observed,
        "```",
        "",
        "Expected: the documented behaviour above; the script runs to its end.",
        "",
        "Environment:",
        "",
        "```",
        environment.rstrip("\n"),
        "```",
        "",
        f"(Found by torch-conformance, behaviour `{b.id}`; replay: `{r.get('repro_line', '')}`.)",
    ]
    return "\n".join(lines) + "\n"


def census() -> list[tuple[int, str, int]]:
    """(rank, api, code bases using it) of the census's top 300 (reports/api_census.tsv)."""
    lines = (Path(__file__).parent / "api_census.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")][1:]
    return [(int(rank), api, int(repos)) for rank, api, repos in rows]


def census_uncovered() -> dict[str, str]:
    """Census APIs that no behaviour checks, each with the reason (reports/api_census_uncovered.toml)."""
    import tomllib

    path = Path(__file__).parent / "api_census_uncovered.toml"
    return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("uncovered", {}))


def api_coverage() -> list[dict]:
    """For each census API: the behaviours whose catalogue entry names it, or why none does."""
    checking: dict[str, list[str]] = defaultdict(list)
    for b in catalogue.behaviours().values():
        for api in b.apis:
            checking[api].append(b.id)
    why = census_uncovered()
    return [
        {"rank": r, "api": api, "repos": n, "behaviours": checking.get(api, []), "why_not": why.get(api, "")}
        for r, api, n in census()
    ]


def _at_a_glance(sources, areas, area_counts, covered) -> dict:
    """The first screen: one verdict, an areas x (run, device) matrix (each cell with its item
    counts and how many of the area's behaviours ran there), and the behaviours that failed or
    deviate, in that order."""
    columns = sorted({key for per_area in area_counts.values() for key in per_area})
    matrix = []
    for area in areas:
        cells = []
        for key in columns:
            counts = area_counts[area["name"]].get(key, Counter())
            groups = {
                "pass": counts["passed"],
                "fail": sum(counts[s] for s in BAD),
                "deviation": counts["expected failure"],
                "skip": counts["skipped"] + counts["not run"],
            }
            worst = "fail" if groups["fail"] else "deviation" if groups["deviation"] else "pass" if groups["pass"] else "skip"
            marks = {"pass": "✓", "fail": "✗", "deviation": "≈", "skip": "–"}
            text = " ".join(f"{n}{marks[g]}" for g, n in groups.items() if n) or "·"
            ran = len(covered.get((area["name"], key), ()))
            cells.append(
                {
                    "worst": worst if any(groups.values()) else "none",
                    "text": text,
                    "covered": f"{ran} of {len(area['behaviours'])}",
                    **groups,
                }
            )
        matrix.append({"name": area["name"], "title": area["title"], "cells": cells})
    failing = [b for a in areas for b in a["behaviours"] if b["failures"] and any(f["status"] in BAD for f in b["failures"])]
    deviating = [b for a in areas for b in a["behaviours"] if "expected-failure" in b["statuses"].split() and b not in failing]
    not_run = [b for a in areas for b in a["behaviours"] if b["needs"]]
    ran = sum(len(s.results) for s in sources)
    incomplete = any(s.incomplete for s in sources)
    if not ran:
        verdict = ("unknown", "No results: nothing ran.")
    elif failing:
        verdict = ("fail", f"Does not conform: {len(failing)} behaviour{'s' if len(failing) != 1 else ''} failed.")
    elif incomplete:
        verdict = ("unknown", "No failure so far, but a run is incomplete: some items never ran.")
    else:
        verdict = (
            "pass",
            "Conforms: every behaviour that ran held" + (f" ({len(deviating)} known deviations)." if deviating else "."),
        )
    if not_run and ran:
        verdict = (
            verdict[0],
            f"{verdict[1]} {len(not_run)} CUDA-only behaviour{'s' if len(not_run) != 1 else ''} not run: needs CUDA.",
        )
    return {
        "verdict": verdict,
        "matrix_columns": [f"{sources[i].label} · {device}" if len(sources) > 1 else device for i, device in columns],
        "matrix": matrix,
        "failing": failing,
        "deviating": deviating,
        "not_run": not_run,
    }


def _cell(counts: Counter | None) -> dict:
    if not counts:
        return {"status": "empty", "text": "", "title": ""}
    parts = [f"{SYMBOL[s]}{counts[s]}" for s in STATUSES if counts.get(s)]
    return {
        "status": _cell_status(counts).replace(" ", "-"),
        "text": " ".join(parts),
        "title": ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s)),
    }


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True
)


def plain_rst(text: str) -> str:
    """A docstring quote as a reader sees it on the docs page: roles (:attr:`x`, :func:`~a.b`) and
    double backticks reduced to their text. The catalogue keeps the verbatim form."""
    text = re.sub(r":[\w:]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


_ENV.filters["plain_rst"] = plain_rst


def render(sources: list[schema.Source], strength: dict | None = None) -> str:
    return _ENV.get_template("index.html.j2").render(**build(sources, strength))


def write_html(paths: list[Path], out: Path, strength_path: Path | None = None) -> None:
    """Render `paths` into `out`, written whole to a temporary file and then moved into place.
    `strength_path`: a strength file (python -m tools.killmatrix --auto --json FILE) to show."""
    from reports.strength import load

    strength = load(strength_path) if strength_path else None
    schema.atomic_write(out, render([schema.load(Path(p)) for p in paths], strength))


def main(argv=None, prog="python -m reports.render") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description="Render results.jsonl files (one or several machines or torch versions) into one HTML page."
    )
    parser.add_argument("results", nargs="+", type=Path, help="results.jsonl files")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("conformance-report/merged/index.html"),
        help="the HTML file to write (default: %(default)s)",
    )
    parser.add_argument(
        "--strength", type=Path, default=None, help="a strength file (python -m tools.killmatrix --auto --json FILE) to show"
    )
    args = parser.parse_args(argv)
    if any(p.resolve() == args.output.resolve() for p in args.results):
        parser.exit(2, f"{prog}: error: output {args.output} is one of the inputs\n")
    from reports.strength import StrengthError

    try:
        write_html(args.results, args.output, args.strength)
    except (schema.ResultsError, StrengthError) as exc:
        parser.exit(2, f"{prog}: error: {exc}\n")
    except OSError as exc:
        parser.exit(2, f"{prog}: error: cannot write {args.output} ({exc.strerror or exc})\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
