"""Quotes from documentation pages: the page snapshots and the match that checks a quote against one.

Note [Page quotes]
~~~~~~~~~~~~~~~~~~
A catalogue entry's `quote` is a short verbatim fragment of the documentation. Where a docstring
holds it (`docstring = "torch.x"`), a self-test reads the installed torch's `__doc__`. Where a
documentation page holds it (the notes pages, tensor_attributes, ...), there is nothing to import:
the page's source is kept in `pages/`, one file per page, named in `pages/MANIFEST.toml` with the
repository, path and commit it came from and the doc URL it renders to. `tests/test_quotes.py`
finds each such entry's page by its `doc` URL (without the #fragment) and checks that the quote
occurs in it, after `normalise` has removed what rendering removes: reST and MyST roles
(:func:`x`, {func}`x`), literals (``x``, `x`), emphasis (*x*, **x**), link targets, backslash
escapes, code-fence lines and line wrapping. So a quote may keep the source's markup or drop it,
and a quote the page no longer says fails, naming the entry, the URL and the quote.

`python -m tools.refresh_pages COMMIT` downloads the manifest's pages again at another commit.
This module reads files only (no torch, no network), like the rest of the catalogue package.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PAGES = Path(__file__).parent / "pages"
MANIFEST = PAGES / "MANIFEST.toml"
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"


@dataclass(frozen=True)
class Page:
    name: str  # its key in the manifest: the snapshot is pages/<name><suffix of path>
    url: str  # the doc URL it renders to, as catalogue entries give it (no #fragment)
    repository: str
    path: str  # the source file's path in the repository
    commit: str
    excerpt: str | None = None  # which part of the page the snapshot holds, where not all of it
    note: str | None = None

    def file(self, pages_dir: Path = PAGES) -> Path:
        return pages_dir / f"{self.name}{Path(self.path).suffix}"

    @property
    def raw_url(self) -> str:
        return RAW_URL.format(repository=self.repository, commit=self.commit, path=self.path)


class ManifestError(ValueError):
    pass


def load_manifest(path: Path = MANIFEST) -> dict[str, Page]:
    """name -> Page, for every [pages."name"] table of the manifest."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ManifestError(f"{path}: {error}") from error
    pages = {}
    for name, entry in data.get("pages", {}).items():
        fields = set(entry)
        if not {"url", "repository", "path", "commit"} <= fields <= {"url", "repository", "path", "commit", "excerpt", "note"}:
            raise ManifestError(f"{path.name}: page {name!r} has fields {sorted(fields)}")
        if "#" in entry["url"]:
            raise ManifestError(f"{path.name}: page {name!r} has a #fragment in its url {entry['url']!r}")
        pages[name] = Page(name=name, **entry)
    return pages


def page_url(doc: str) -> str:
    """The page a doc URL points into: the URL without its #fragment."""
    return doc.partition("#")[0]


def page_for(doc: str, pages: dict[str, Page]) -> Page | None:
    url = page_url(doc)
    return next((page for page in pages.values() if page.url == url), None)


_FENCE = re.compile(r"^[ \t]*(?:`{3,}|~{3,}).*$", re.MULTILINE)  # a code fence's line, not its code
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!:<>~|])")
_ROLE = re.compile(r"(?::[\w.+-]+(?::[\w.+-]+)*:|\{[\w.+-]+(?::[\w.+-]+)*\})`([^`]*)`")  # :py:func:`x`, {func}`x`
_TITLE_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.DOTALL)  # `title <target>` keeps the title
_LITERAL = re.compile(r"``(.+?)``|`([^`]+)`_{0,2}|`([^`]+)`")  # ``x``, `text`_ (a reST link), `x`
_LINK = re.compile(r"\[([^\]]*)\]\(<?[^)>]*>?\)")  # [text](url) and [text](<url>)
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")


def _role_text(match: re.Match) -> str:
    text = match.group(1)
    titled = _TITLE_TARGET.match(text)
    if titled and titled.group(1):
        text = titled.group(1)
    return text.removeprefix("~").removeprefix("!")


def normalise(text: str) -> str:
    """The text as a reader sees it, for matching: markup gone, whitespace runs one space.

    reST and MyST roles keep their text (``:func:`~torch.x``` and ``{func}`~torch.x``` both read
    ``torch.x``; a ``title <target>`` keeps its title), literals and emphasis lose their marks,
    Markdown links keep their text, backslash escapes their character, code-fence lines go, and
    line wrapping, indents and repeated spaces become one space.
    """
    text = _FENCE.sub("", text)
    text = _ESCAPE.sub(r"\1", text)
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(lambda m: next(g for g in m.groups() if g is not None), text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    return " ".join(text.split())
