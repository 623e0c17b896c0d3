"""Build the course website into site/: the README's course map, every notebook with its committed outputs,
the docs, the benchmarks' README, and the standalone explorer pages.

    python tools/build_site.py                  # = make site; open site/index.html
    python tools/build_site.py --small-explorers  # two frames per explorer page (what the tests build)

Sphinx with myst-nb renders the pages (configuration: docs/site/conf.py; the notebooks are not executed).
The explorer pages (``python -m minijepa.explorer_pages``) take minutes of CPU to precompute (hundreds of
frames), so they are cached in ``build/explorers/`` under a digest of everything they are computed from:
the source of every ``minijepa`` module the page generator imports, the versions of the libraries that draw
them, and the options. A rebuild of the site reuses them until one of those changes. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "docs" / "site"
CACHE = ROOT / "build" / "explorers"
# The libraries whose versions can change the frames (numerics, drawing, the photograph).
_LIBRARIES = ("torch", "numpy", "matplotlib", "scikit-image", "einops")


def explorer_digest(small: bool) -> str:
    """SHA-256 of what the explorer pages are a function of (sources, library versions, options).

    The sources: every minijepa module imported by the page generator and by minijepa.data (its photograph
    loader, imported only when the pages are drawn).
    """
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, minijepa.explorer_pages, minijepa.data; print('\\n'.join(sorted("
         "m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'minijepa' and getattr(m, '__file__', None))))"],
        check=True, capture_output=True, text=True, cwd=ROOT)
    digest = hashlib.sha256()
    for line in probe.stdout.split():
        path = Path(line).resolve()
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        digest.update(f"{name}\n".encode() + path.read_bytes() + b"\0")
    for library in _LIBRARIES:
        digest.update(f"{library}=={importlib.metadata.version(library)}\n".encode())
    digest.update(f"small={small}".encode())
    return digest.hexdigest()


def explorer_pages(small: bool, cache: Path = CACHE) -> Path:
    """A folder holding ``explorers/`` (index, mask, attention pages): from the cache, or computed once."""
    key = explorer_digest(small)[:20]
    folder = cache / (("small-" if small else "") + key)
    if (folder / "explorers" / "index.html").is_file():
        print(f"explorer pages: cached ({folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder})")
        return folder
    staging = cache / f".staging-{key}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    command = [sys.executable, "-m", "minijepa.explorer_pages", "--out", str(staging / "explorers")]
    print("explorer pages: computing (" + ("two frames per page" if small else "a few minutes of CPU") + ")", flush=True)
    subprocess.run(command + (["--small"] if small else []), check=True, cwd=ROOT)
    for stale in cache.glob(("small-" if small else "") + "?" * 20):  # older versions of the same kind
        shutil.rmtree(stale, ignore_errors=True)
    staging.rename(folder)  # complete or absent: a killed build leaves only a staging folder
    return folder


def build_site(out: Path, small_explorers: bool = False, cache: Path = CACHE) -> Path:
    """Write the website into ``out`` (emptied first); returns the home page."""
    pages = explorer_pages(small_explorers, cache)
    if out.exists():
        shutil.rmtree(out)
    doctrees = cache.parent / "site-doctrees"
    shutil.rmtree(doctrees, ignore_errors=True)
    env = {**os.environ, "MINIJEPA_SITE_EXTRA": str(pages)}
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-c", str(CONF),
                    "-d", str(doctrees), str(ROOT), str(out)], check=True, cwd=ROOT, env=env)
    # The README is the root document; index.html is where a reader (and a web server) starts.
    (out / "index.html").write_text('<!DOCTYPE html><meta charset="utf-8"><title>minijepa</title>'
                                    '<meta http-equiv="refresh" content="0; url=README.html">'
                                    '<a href="README.html">minijepa: the course</a>\n')
    return out / "index.html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default site/, emptied first)")
    parser.add_argument("--small-explorers", action="store_true", help="two frames per explorer page (quick)")
    args = parser.parse_args(argv)
    home = build_site(args.out.resolve(), args.small_explorers)
    print(f"site written: open {home} (or: python -m http.server -d {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
