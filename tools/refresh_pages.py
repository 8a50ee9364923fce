"""Download the documentation pages the catalogue quotes again, at one commit of PyTorch.

    python -m tools.refresh_pages COMMIT                 # every page of the manifest
    python -m tools.refresh_pages COMMIT --page notes/autograd --page tensor_attributes

COMMIT is a commit hash (7 to 40 hex digits) or a release tag (v2.13.0, v2.13.0-rc1); use the
commit of the torch the suite pins (`python -c "import torch; print(torch.version.git_version)"`).

This needs the network, and is not run in CI: each page is fetched with urllib from GitHub's raw
file URL, https://raw.githubusercontent.com/<repository>/<commit>/<path>, with the repository
and path of its table in conformance/catalogue/pages/MANIFEST.toml. Every page is downloaded
whole into a temporary file first; only when all of them have arrived are they renamed over the
snapshots and is the manifest rewritten (each refreshed page gets the new commit and loses its
`excerpt` and `note`, which described the old copy). A bad argument or a failed download is
named in one line on stderr, exit 2, and leaves the snapshots and the manifest as they were.

A page whose source moved (a .rst that became .md, say) fails to download: correct its `path` in
the manifest, rename its snapshot to the new suffix, and run the tool again. Then run
`pytest tests/test_quotes.py` to see which quotes the new pages no longer hold.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.request import urlopen

from conformance.catalogue.quotes import MANIFEST, RAW_URL, ManifestError, load_manifest

COMMIT = re.compile(r"[0-9a-f]{7,40}|v\d+\.\d+\.\d+(?:-rc\d+)?")
TABLE = re.compile(r'^\[pages\."(?P<name>[^"]+)"\]\s*$')
DROPPED = ("excerpt", "note")  # they describe the snapshot a refresh replaces


class RefreshError(Exception):
    """Anything that stops a refresh: said in one line, exit 2, nothing changed."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.refresh_pages",
        description="Download the documentation pages the catalogue quotes at COMMIT (needs the network).",
    )
    parser.add_argument("commit", metavar="COMMIT", help="a commit hash (7 to 40 hex digits) or a release tag (v2.13.0)")
    parser.add_argument("--page", action="append", metavar="NAME", help="only this manifest page (repeatable)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="the manifest (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per download (default: %(default)s)")
    return parser


def _download(url: str, timeout: float) -> str:
    with urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8")


def rewritten_manifest(text: str, names: set[str], commit: str) -> str:
    """The manifest's text with each named page at `commit`, its excerpt and note gone; the
    comments and everything else kept as written."""
    out, current = [], None
    for line in text.splitlines(keepends=True):
        table = TABLE.match(line)
        if table:
            current = table["name"]
        elif line.startswith("["):
            current = None
        key = line.partition("=")[0].strip() if "=" in line and not line.lstrip().startswith("#") else None
        if current in names and key == "commit":
            line = f'commit = "{commit}"\n'
        elif current in names and key in DROPPED:
            continue
        out.append(line)
    return "".join(out)


def _write_beside(target: Path, text: str) -> Path:
    """`text` in a temporary file in `target`'s folder (so a rename replaces `target` at once)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
        stream.write(text)
    return Path(name)


def refresh(commit: str, *, manifest: Path = MANIFEST, only: list[str] | None = None, timeout: float = 30.0) -> list[str]:
    """Download the pages at `commit` and put them in place; the lines to print. Raises
    RefreshError, with nothing changed, when anything is wrong."""
    if not COMMIT.fullmatch(commit):
        raise RefreshError(
            f"COMMIT {commit!r} is neither a commit hash (7 to 40 lowercase hex digits) nor a release tag (v2.13.0)"
        )
    try:
        pages = load_manifest(manifest)
    except ManifestError as error:
        raise RefreshError(f"cannot read the manifest: {error}") from None
    unknown = sorted(set(only or ()) - set(pages))
    if unknown:
        raise RefreshError(f"no page {', '.join(map(repr, unknown))} in {manifest}; its pages: {', '.join(sorted(pages))}")
    chosen = [pages[name] for name in (only or pages)]
    pages_dir = manifest.parent
    downloaded: list[tuple[Path, Path]] = []  # (temporary file, snapshot it replaces)
    try:
        for page in chosen:
            url = RAW_URL.format(repository=page.repository, commit=commit, path=page.path)
            try:
                text = _download(url, timeout)
            except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors; bad UTF-8 a ValueError
                raise RefreshError(f"could not download page {page.name!r} from {url}: {error}; nothing changed") from None
            target = page.file(pages_dir)
            downloaded.append((_write_beside(target, text), target))
        new_manifest = rewritten_manifest(manifest.read_text(encoding="utf-8"), {p.name for p in chosen}, commit)
        downloaded.append((_write_beside(manifest, new_manifest), manifest))
    except BaseException:
        for temporary, _ in downloaded:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, target in downloaded:
        os.replace(temporary, target)
    return [f"{page.name}: {page.file(pages_dir).relative_to(pages_dir)} from {page.path} at {commit}" for page in chosen]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        lines = refresh(args.commit, manifest=args.manifest, only=args.page, timeout=args.timeout)
    except RefreshError as error:
        print(f"refresh_pages: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print(f"{len(lines)} page(s) refreshed; now run: pytest tests/test_quotes.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
