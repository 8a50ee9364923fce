"""The behaviour catalogue: the suite's specification.

Each area has one TOML file here. An entry is one documented statement:

    [behaviours.numpy_shares_memory]          # id becomes "numpy_bridge.numpy_shares_memory"
    statement = "Tensor.numpy() of a CPU tensor shares memory with it ..."
    doc = "https://docs.pytorch.org/docs/stable/generated/torch.Tensor.numpy.html"
    note = 0                                  # optional: the study note the claim came from
    claim = "..."                             # that note's claim, in our words
    verdict = "right"                         # right | partly right | corrected | outdated
                                              # corrected: the claim was never right; outdated: right
                                              # for the torch the note was written against, not now
    quote = "..."                             # the documented sentence, a short verbatim fragment
    docstring = "torch.Tensor.numpy"          # optional: the object whose __doc__ holds the quote
                                              # (without it, the page snapshot in pages/ does: quotes.py)
    kind = "observed"                         # optional: no doc promises it (default: documented)
    apis = ["Tensor.numpy"]                   # the APIs it checks, in the census's spelling (Tensor.x,
                                              # torch.x, F.x, nn.X); each must exist on the installed torch
    domain = ["dim<0", "dim>=0"]              # optional: input classes a ci run must reach (labels
                                              # the strategies report; see README, "Domains")
    equivalent = { "args.tensors_swapped" = "..." }  # optional: automatic API mutants (operator,
                                              # operator[param], operator@class, or API:operator) that
                                              # cannot change the documented behaviour, with the reason
    clauses = [                               # what the statement says, clause by clause, each with
      { says = "...", check = "assert_same_storage" },  # the check in the behaviour's test that enforces
    ]                                         # it: a function it calls, or its assertion's message
    not_declared = "..."                      # why its subject is no Operation (a DataLoader worker
                                              # process, a device object's identity): every other
                                              # behaviour declares one (harness/declaration.py)
    since = "2.6"                             # optional: the torch release that introduced it
    until = "2.13"                            # optional: the first torch release where it no longer
                                              # holds; outside [since, until) its items are skipped
    changed = "https://..."                   # with since/until: the changelog or PR of the change
    needs = "cuda"                            # optional: the behaviour is CUDA's own (its tests run on a
                                              # CUDA device only); a report of a run without CUDA shows
                                              # it as "not run: needs CUDA", never as a pass

This module reads TOML only (no torch), so the report renderer can use it too.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
VERDICTS = ("right", "partly right", "corrected", "outdated")
NEEDS = ("cuda",)  # what a behaviour may need that a machine may lack
KINDS = ("documented", "observed")

# The study notes the claims come from, described so the report stands on its own.
NOTES = {
    0: "English summary of the official 60-minute blitz, with collected Q&A",
    1: "Chinese learning notes on the 60-minute blitz and on contiguity",
    2: "Chinese notes on everyday PyTorch operations (losses, joining, devices, modules)",
    3: "Chinese course notes on tensor creation, reductions and autograd",
    4: "English tips sheet (tensors, NumPy bridge, autograd)",
}


@dataclass(frozen=True)
class Behaviour:
    id: str
    area: str
    statement: str
    doc: str
    note: int | None = None
    claim: str | None = None
    verdict: str | None = None
    quote: str | None = None  # the documented sentence it rests on: a short verbatim fragment of the doc
    docstring: str | None = None  # the dotted name of the torch object whose __doc__ holds the quote
    kind: str = "documented"  # or "observed": what torch does where no doc promises anything
    domain: tuple[str, ...] = ()  # the input classes (strategy labels) a ci-profile run must reach
    apis: tuple[str, ...] = ()  # the APIs the behaviour checks, spelled as in the API census
    equivalent: tuple[tuple[str, str], ...] = ()  # (mutant key, why it cannot change the behaviour)
    clauses: tuple[tuple[str, str], ...] = ()  # (what the statement says, the check in its test that enforces it)
    not_declared: str | None = None  # why the behaviour's subject is not a declared Operation
    since: str | None = None  # the torch release (major.minor) that introduced the behaviour
    until: str | None = None  # the first torch release where it no longer holds
    changed: str | None = None  # the changelog or pull request of the change (with since/until)
    needs: str | None = None  # "cuda": CUDA's own behaviour, whose tests run on a CUDA device only

    @property
    def releases(self) -> str | None:
        """The torch releases the behaviour holds for, as a version range (`>=2.6,<2.13`), or None: all."""
        if not (self.since or self.until):
            return None
        return ",".join(([f">={self.since}"] if self.since else []) + ([f"<{self.until}"] if self.until else []))

    def holds_on(self, torch_version: str) -> bool:
        """Whether `torch_version` (`2.13.0+cpu`, a nightly `2.14.0.dev20260101`) is in [since, until):
        a release's pre-releases and local builds count as that release."""
        release = _release(torch_version)
        return (self.since is None or release >= _release(self.since)) and (self.until is None or release < _release(self.until))

    @property
    def origin(self) -> str:
        if self.note is None:
            return "documentation"
        return f"note {self.note}: {NOTES[self.note]}"


@dataclass(frozen=True)
class Area:
    name: str
    title: str
    behaviours: tuple[Behaviour, ...]


FIELDS = {
    "statement",
    "doc",
    "note",
    "claim",
    "verdict",
    "quote",
    "docstring",
    "kind",
    "domain",
    "apis",
    "equivalent",
    "clauses",
    "not_declared",
    "since",
    "until",
    "changed",
    "needs",
}
_RELEASE = re.compile(r"\d+\.\d+")


def _release(version: str) -> tuple[int, int]:
    """(major, minor) of a torch version string; 2.13.0+cpu and 2.13.0a0 are release 2.13."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"{version!r} is not a torch version")
    return int(match.group(1)), int(match.group(2))


def _check_releases(where: str, entry: dict) -> None:
    """since/until: torch releases `major.minor`, since before until, with the `changed` link."""
    for name in ("since", "until"):
        if name in entry and not (isinstance(entry[name], str) and _RELEASE.fullmatch(entry[name])):
            raise CatalogueError(f'{where} has {name} {entry[name]!r}; expected a torch release like "2.6"')
    if "since" in entry and "until" in entry and _release(entry["since"]) >= _release(entry["until"]):
        raise CatalogueError(f"{where} has since {entry['since']} not before until {entry['until']}")
    ranged = "since" in entry or "until" in entry
    link = entry.get("changed")
    if ranged and not (isinstance(link, str) and link.startswith("https://")):
        raise CatalogueError(f"{where} has a torch range but changed {link!r}; expected the https:// link to the change")
    if "changed" in entry and not ranged:
        raise CatalogueError(f"{where} has changed without since or until")


class CatalogueError(ValueError):
    pass


def _load_area(path: Path) -> Area:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    name = path.stem
    behaviours = []
    for key, entry in data.get("behaviours", {}).items():
        unknown = set(entry) - FIELDS
        if unknown or not {"statement", "doc"} <= set(entry):
            raise CatalogueError(f"{path.name}: entry {key!r} has fields {sorted(entry)}")
        if ("note" in entry) != ("verdict" in entry) or entry.get("verdict", "right") not in VERDICTS:
            raise CatalogueError(f"{path.name}: entry {key!r} needs note and verdict together, verdict one of {VERDICTS}")
        if entry.get("kind", "documented") not in KINDS:
            raise CatalogueError(f"{path.name}: entry {key!r} has kind {entry['kind']!r}; one of {KINDS}")
        if "docstring" in entry and "quote" not in entry:
            raise CatalogueError(f"{path.name}: entry {key!r} names a docstring but quotes nothing from it")
        if "not_declared" in entry and not (isinstance(entry["not_declared"], str) and entry["not_declared"].strip()):
            raise CatalogueError(f"{path.name}: entry {key!r} has not_declared {entry['not_declared']!r}; expected its reason")
        if entry.get("note") is not None and entry["note"] not in NOTES:
            raise CatalogueError(f"{path.name}: entry {key!r} names unknown note {entry['note']}")
        _check_releases(f"{path.name}: entry {key!r}", entry)
        if entry.get("needs", NEEDS[0]) not in NEEDS:
            raise CatalogueError(f"{path.name}: entry {key!r} has needs {entry['needs']!r}; one of {NEEDS}")
        domain = entry.pop("domain", [])
        if not isinstance(domain, list) or not all(isinstance(c, str) and c for c in domain):
            raise CatalogueError(f"{path.name}: entry {key!r} has domain {domain!r}; expected a list of class labels")
        apis = entry.pop("apis", [])
        if not isinstance(apis, list) or not apis or not all(isinstance(a, str) and a for a in apis):
            raise CatalogueError(f"{path.name}: entry {key!r} needs apis, a non-empty list of API names")
        clauses = entry.pop("clauses", [])
        if not isinstance(clauses, list) or not all(
            isinstance(c, dict) and set(c) == {"says", "check"} and all(isinstance(v, str) and v.strip() for v in c.values())
            for c in clauses
        ):
            raise CatalogueError(f"{path.name}: entry {key!r} has clauses {clauses!r}; expected a list of {{says, check}} tables")
        equivalent = entry.pop("equivalent", {})
        if not isinstance(equivalent, dict) or not all(isinstance(v, str) and v.strip() for v in equivalent.values()):
            raise CatalogueError(f"{path.name}: entry {key!r} has equivalent {equivalent!r}; expected a table of mutant = reason")
        behaviours.append(
            Behaviour(
                id=f"{name}.{key}",
                area=name,
                domain=tuple(domain),
                apis=tuple(apis),
                equivalent=tuple(sorted(equivalent.items())),
                clauses=tuple((c["says"], c["check"]) for c in clauses),
                **entry,
            )
        )
    return Area(name=name, title=data["title"], behaviours=tuple(behaviours))


@cache
def areas() -> tuple[Area, ...]:
    return tuple(_load_area(p) for p in sorted(HERE.glob("*.toml")))


@cache
def behaviours() -> dict[str, Behaviour]:
    return {b.id: b for area in areas() for b in area.behaviours}
