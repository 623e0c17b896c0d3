"""tools/build_site.py's cache of the explorer pages: computed once per digest of their inputs, then reused.

(The site itself is built and opened in headless Chromium by tests/test_browser.py.)
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_site)


def test_digest_covers_the_code_that_draws_the_pages_and_the_options(monkeypatch):
    digest = build_site.explorer_digest(small=False)
    assert digest == build_site.explorer_digest(small=False) and digest != build_site.explorer_digest(small=True)
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real(self))
    build_site.explorer_digest(small=False)
    assert {"explorer_pages.py", "explorers.py", "masks.py", "vit.py", "data.py"} <= set(read)


def test_explorer_pages_are_computed_once_per_digest(tmp_path, monkeypatch):
    runs = []
    real_run = subprocess.run

    def fake_generator(command, *args, **kwargs):
        if command[1:3] == ["-m", "minijepa.explorer_pages"]:
            out = Path(command[command.index("--out") + 1])
            out.mkdir(parents=True)
            (out / "index.html").write_text("<html></html>")
            runs.append(command)
            return subprocess.CompletedProcess(command, 0)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(build_site.subprocess, "run", fake_generator)
    monkeypatch.setattr(build_site, "explorer_digest", lambda small: "a" * 64)
    first = build_site.explorer_pages(small=True, cache=tmp_path)
    again = build_site.explorer_pages(small=True, cache=tmp_path)
    assert first == again and len(runs) == 1 and "--small" in runs[0]
    assert (first / "explorers" / "index.html").is_file()
    # An input changed: computed again, and the stale copy of the same kind removed.
    monkeypatch.setattr(build_site, "explorer_digest", lambda small: "b" * 64)
    changed = build_site.explorer_pages(small=True, cache=tmp_path)
    assert changed != first and len(runs) == 2 and not first.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [changed.name]  # no staging folder left behind
    assert sys.executable == runs[0][0]
