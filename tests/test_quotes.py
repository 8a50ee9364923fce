"""Quotes from documentation pages are checked too: every catalogue entry whose quote no docstring
holds has its page's source snapshotted in conformance/catalogue/pages/, and the quote must occur
in it (Note [Page quotes] in conformance/catalogue/quotes.py). No network: the snapshots are files
of this repository, and tools.refresh_pages, which downloads them again, is tested here only on
paths that never reach the network."""

import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.catalogue import quotes
from tools import refresh_pages

ROOT = Path(__file__).resolve().parent.parent


def page_quoted_entries():
    return [b for b in catalogue.behaviours().values() if b.quote and not b.docstring]


def test_every_page_quote_is_in_its_page_snapshot():
    pages = quotes.load_manifest()
    texts = {name: quotes.normalise(page.file().read_text(encoding="utf-8")) for name, page in pages.items()}
    failures = []
    for b in page_quoted_entries():
        page = quotes.page_for(b.doc, pages)
        if page is None:
            failures.append(
                f"{b.id}: no snapshot of {quotes.page_url(b.doc)} (quote {b.quote!r}); add the page to "
                f"{quotes.MANIFEST.relative_to(ROOT)} and fetch it with python -m tools.refresh_pages COMMIT --page NAME"
            )
        elif quotes.normalise(b.quote) not in texts[page.name]:
            where = f" (the snapshot is an excerpt: {page.excerpt})" if page.excerpt else ""
            failures.append(f"{b.id}: {b.quote!r} is not on {page.url} at {page.commit[:12]}{where}")
    assert not failures, "page quotes not found:\n" + "\n".join(failures)


def test_the_manifest_names_only_pages_the_catalogue_quotes_and_each_has_its_snapshot():
    pages = quotes.load_manifest()
    quoted = {quotes.page_url(b.doc) for b in page_quoted_entries()}
    assert not [p.name for p in pages.values() if p.url not in quoted], "manifest pages no entry quotes"
    assert len({p.url for p in pages.values()}) == len(pages), "two manifest pages render to one URL"
    missing = [str(p.file()) for p in pages.values() if not p.file().is_file() or not p.file().stat().st_size]
    assert not missing, f"manifest pages without a snapshot: {missing}"
    files = {p for p in quotes.PAGES.rglob("*") if p.is_file()} - {quotes.MANIFEST}
    orphans = sorted(str(f.relative_to(quotes.PAGES)) for f in files - {p.file() for p in pages.values()})
    assert not orphans, f"snapshots the manifest does not name: {orphans}"


@pytest.mark.parametrize(
    ("source", "read"),
    [
        ("the ``.grad_fn``\nattribute of each :class:`torch.Tensor` is", "the .grad_fn attribute of each torch.Tensor is"),
        ("the ``.grad_fn``\nattribute of each {class}`torch.Tensor` is", "the .grad_fn attribute of each torch.Tensor is"),
        ("(*add*, *sub*, `div`, ``mul``) differ", "(add, sub, div, mul) differ"),
        ("with the exception of\n{meth}`~torch.Tensor.copy_` and", "with the exception of torch.Tensor.copy_ and"),
        ('{doc}`"mps" <mps>`, **not** [strided](https://x.org/s) `link`_', '"mps", not strided link'),
        ("views \\{meth}\\`~torch.Tensor.add\\` and \\[a\\](<u>)", "views torch.Tensor.add and a"),
        ("an example:\n\n```python\nx = `a`\n```\n\nends", "an example: x = a ends"),
        ("a [B x T x *] shape, 2 * 3 * 4", "a [B x T x *] shape, 2 * 3 * 4"),
    ],
)
def test_normalise_reads_markup_as_a_reader_does(source, read):
    assert quotes.normalise(source) == read


def test_a_quote_the_page_does_not_say_is_not_found():
    page = quotes.normalise("Functionally, ``module.eval()`` (or equivalently ``module.train(False)``) are")
    assert quotes.normalise("Functionally, ``module.eval()`` (or equivalently ``module.train()``) are") not in page


@pytest.fixture
def manifest_copy(tmp_path):
    """A copy of the manifest and its snapshots, and a way to read all of them back."""
    pages = tmp_path / "pages"
    manifest = pages / "MANIFEST.toml"
    for page in quotes.load_manifest().values():
        target = page.file(pages)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(page.file().read_bytes())
    manifest.write_bytes(quotes.MANIFEST.read_bytes())

    def contents():
        return {str(p.relative_to(pages)): p.read_bytes() for p in sorted(pages.rglob("*")) if p.is_file()}

    return manifest, contents


def _no_network(url, timeout):
    raise AssertionError(f"the refresh reached for the network: {url}")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["main"], "neither a commit hash"),
        (["cf30153c4c131c8164ee7798e5022d810682e2cb; rm -rf /"], "neither a commit hash"),
        (["CF30153C"], "neither a commit hash"),
        (["cf30153c", "--page", "notes/no_such_page"], "no page 'notes/no_such_page'"),
    ],
)
def test_refresh_refuses_bad_input_in_one_line_and_changes_nothing(manifest_copy, monkeypatch, capsys, argv, said):
    manifest, contents = manifest_copy
    before = contents()
    monkeypatch.setattr(refresh_pages, "urlopen", _no_network)
    assert refresh_pages.main([*argv, f"--manifest={manifest}"]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err
    assert contents() == before


def test_a_failed_download_changes_nothing(manifest_copy, monkeypatch, capsys):
    manifest, contents = manifest_copy
    before = contents()
    calls = []

    def second_fails(url, timeout):
        calls.append(url)
        if len(calls) == 2:
            raise urllib.error.HTTPError(url, 404, "Not Found", None, None)
        return _Response(b"a whole page\n")

    monkeypatch.setattr(refresh_pages, "urlopen", second_fails)
    assert refresh_pages.main(["v2.13.0", f"--manifest={manifest}"]) == 2
    err = capsys.readouterr().err
    assert "404" in err and "nothing changed" in err and err.count("\n") == 1, err
    assert calls[1] == (
        "https://raw.githubusercontent.com/pytorch/pytorch/v2.13.0/" + quotes.load_manifest(manifest)[_second(manifest)].path
    )
    assert contents() == before, "a failed refresh left files changed (or temporary files behind)"


def test_a_refresh_replaces_the_pages_and_sets_their_commit(manifest_copy, monkeypatch):
    manifest, contents = manifest_copy
    table = '[pages."notes/cuda"]\n'
    manifest.write_text(manifest.read_text().replace(table, table + 'excerpt = "its introduction"\n'))
    assert quotes.load_manifest(manifest)["notes/cuda"].excerpt == "its introduction"
    before = quotes.load_manifest(manifest)
    monkeypatch.setattr(refresh_pages, "urlopen", lambda url, timeout: _Response(f"page at {url}\n".encode()))
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert refresh_pages.main([commit, "--page", "notes/cuda", "--page", "optim", f"--manifest={manifest}"]) == 0
    after = quotes.load_manifest(manifest)
    for name in ("notes/cuda", "optim"):  # one with an excerpt, one with a note
        assert after[name].commit == commit and after[name].excerpt is None and after[name].note is None
        assert after[name].file(manifest.parent).read_text() == f"page at {after[name].raw_url}\n"
    assert {n: p for n, p in after.items() if n not in ("notes/cuda", "optim")} == {
        n: p for n, p in before.items() if n not in ("notes/cuda", "optim")
    }
    assert manifest.read_text().startswith("# Snapshots of the documentation pages"), "comments kept"
    assert not [name for name in contents() if name.endswith(".part")]


def test_the_refresh_command_exits_2_on_a_bad_commit_without_the_network():
    done = subprocess.run(
        [sys.executable, "-m", "tools.refresh_pages", "not-a-commit"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stderr.startswith("refresh_pages: COMMIT 'not-a-commit'"), done.stderr


def _second(manifest: Path) -> str:
    return list(quotes.load_manifest(manifest))[1]


class _Response:
    def __init__(self, body: bytes):
        self.body = body

    def read(self) -> bytes:
        return self.body

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
