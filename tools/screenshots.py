"""Drive the course's explorers in JupyterLab in a real headless browser; take the README's screenshots.

    python tools/screenshots.py                 # writes docs/images/mask_explorer.png, attention_explorer.png
    python tools/screenshots.py --out /tmp/shots

The helpers here are also what ``tests/test_browser.py`` uses:

* :func:`browser_missing` says why the browser tests cannot run here (no Chromium, no Playwright, ...).
* :func:`jupyter_lab` starts JupyterLab on 127.0.0.1 (a free port, a random token, its own temporary
  config/data/settings directories, no network access for news, updates or extensions), and stops it
  (its whole process group, kernels included) however the block ends.
* :func:`chromium` launches the system's Chromium (``/usr/bin/chromium``) through Playwright; no browser is
  downloaded at run time.
* :class:`NotebookPage` opens a notebook, waits for its kernel (selecting it if JupyterLab asks), runs all
  cells and waits until they are done, and finds an explorer's controls, text and figure.

Everything waits on an explicit condition (a kernel state, a cell count, a text), never on a fixed sleep, so
that the steps hold on a loaded machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MASK_NOTEBOOK = "03_multiblock_masking.ipynb"
ATTENTION_NOTEBOOK = "02_attention_and_vit.ipynb"
KERNEL_NAME = "minijepa"  # the kernel the notebooks name (tools/build_notebooks.py KERNEL, make lab)

CHROMIUM = os.environ.get("MINIJEPA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]

# JupyterLab user settings written into the server's private settings directory: no news or update checks
# (no network), no autosave, and every cell rendered (no windowing), so that the page holds all outputs.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def browser_missing() -> str | None:
    """Why the browser tests cannot run on this machine, or None when they can."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    for module, hint in (("playwright", "pip install playwright"), ("jupyterlab", "pip install -e '.[course]'"),
                         ("ipywidgets", "pip install -e '.[course]'")):
        try:
            __import__(module)
        except ImportError:
            return f"Python package {module} is missing ({hint})"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str  # http://127.0.0.1:PORT
    token: str
    root_dir: Path
    process: subprocess.Popen
    log: Path

    def api(self, path: str):
        """GET a REST endpoint of the server, decoded from JSON."""
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _descendants(pid: int) -> list:
    try:
        import psutil  # installed with ipykernel
    except ImportError:
        return []
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def stop_process_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a server started in a new session: SIGTERM its process group (the server shuts its kernels down),
    then SIGKILL the group and any of its descendants still alive (kernels run in process groups of their own)."""
    children = _descendants(process.pid)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(Exception):
            if child.is_running():  # (psutil checks that the pid still belongs to the same process)
                child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


@contextlib.contextmanager
def jupyter_lab(root_dir: Path, log: Path | None = None, startup_timeout: float = 120.0):
    """Run JupyterLab on loopback with ``root_dir`` as its root; yield a :class:`Lab`; always stop it."""
    import secrets

    root_dir = Path(root_dir)
    private = Path(tempfile.mkdtemp(prefix="minijepa-lab-"))
    log = Path(log) if log else private / "jupyterlab.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    settings_dir = private / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(private / "config"),
        "JUPYTER_DATA_DIR": str(private / "data"),
        "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(private / "workspaces"),
        "IPYTHONDIR": str(private / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    # The notebooks name the course's kernel (make lab registers it for the user): register it here, in
    # this server's own data folder, with the same command.
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", KERNEL_NAME,
                    "--display-name", "Python (minijepa)"], env=env, check=True, capture_output=True)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=root_dir, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root_dir, process, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n{lab.log_tail()}")
            try:
                lab.api("/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within {startup_timeout:.0f} s:\n{lab.log_tail()}")
                time.sleep(0.2)  # polling the server's port (not a wait for the page)
        yield lab
    finally:
        stop_process_group(process)
        shutil.rmtree(private, ignore_errors=True)


@contextlib.contextmanager
def chromium(playwright=None):
    """Launch the system Chromium headless through Playwright; yield the browser."""
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        if playwright is None:
            playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def copy_notebooks(target: Path, names=(MASK_NOTEBOOK, ATTENTION_NOTEBOOK)) -> Path:
    """Copies of the course notebooks (JupyterLab may save what it opens: never the committed files)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(NOTEBOOKS / name, target / name)
    return target


# JavaScript run in the page (JupyterLab exposes its application as window.jupyterapp).
_CURRENT = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_JS_KERNEL_STATE = f"""() => {{
    const nb = {_CURRENT};
    if (!nb || !nb.sessionContext) return 'no notebook';
    const dialog = document.querySelector('.jp-Dialog');
    if (dialog) return 'dialog';
    if (!nb.context.isReady || !nb.sessionContext.isReady) return 'loading';
    const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
    return kernel ? kernel.status : 'no kernel';
}}"""
_JS_RUN_ALL = f"""() => {{
    window.__minijepaRunAll = undefined;
    window.jupyterapp.commands.execute('notebook:run-all-cells').then(
        ok => {{ window.__minijepaRunAll = ok === false ? 'failed' : 'done'; }},
        error => {{ window.__minijepaRunAll = 'error: ' + error; }});
}}"""
_JS_RUN_STATE = f"""() => {{
    const nb = {_CURRENT};
    const cells = nb.content.widgets.filter(cell => cell.model.type === 'code');
    const pending = cells.filter(cell => !cell.model.executionCount || cell.promptNode.textContent.includes('*'));
    const errors = [];
    for (const cell of cells) {{
        for (const output of cell.model.outputs.toJSON()) {{
            if (output.output_type === 'error') errors.push(output.ename + ': ' + output.evalue);
        }}
    }}
    return {{done: window.__minijepaRunAll, pending: pending.length, cells: cells.length, errors,
             kernel: nb.sessionContext.session.kernel.status}};
}}"""


class NotebookPage:
    """A notebook open in JupyterLab in one browser page."""

    def __init__(self, page, lab: Lab, name: str):
        self.page, self.lab, self.name = page, lab, name

    def open(self, timeout: float = 120.0) -> "NotebookPage":
        """Open the notebook and wait until its kernel is idle (accepting the kernel dialog if one appears)."""
        self.page.goto(self.lab.notebook_url(self.name), wait_until="domcontentloaded")
        self.page.wait_for_function(f"() => !!({_CURRENT}) && !!{_CURRENT}.sessionContext", timeout=timeout * 1000)
        deadline = time.monotonic() + timeout
        while (state := self.page.evaluate(_JS_KERNEL_STATE)) != "idle":
            if state == "dialog":  # "Select Kernel": take the proposed one (the notebook's own)
                self.page.locator(".jp-Dialog .jp-mod-accept").first.click()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: kernel not idle after {timeout:.0f} s (last state {state!r})\n"
                                   f"{self.lab.log_tail()}")
            self.page.wait_for_timeout(200)  # re-read the kernel state (a poll, not a wait for the page)
        return self

    def run_all(self, timeout: float = 300.0) -> dict:
        """Run every cell and wait until all have run and the kernel is idle; fail on an error output."""
        self.page.evaluate(_JS_RUN_ALL)
        deadline = time.monotonic() + timeout
        while True:
            state = self.page.evaluate(_JS_RUN_STATE)
            if state["errors"]:
                raise AssertionError(f"{self.name}: a cell failed: {state['errors']}")
            if state["done"] is not None and state["done"] != "done":
                raise AssertionError(f"{self.name}: run all cells ended with {state['done']!r}")
            if state["done"] == "done" and state["pending"] == 0 and state["kernel"] == "idle":
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: cells still running after {timeout:.0f} s: {state}")
            self.page.wait_for_timeout(250)

    def explorer(self, css_class: str, timeout: float = 60.0, retries: int = 1):
        """The explorer widget (its box), scrolled into view, once its figure and text are drawn.

        If JupyterLab could not display the widget ("Error displaying widget", seen on loaded machines), the
        cell that made it runs again, up to ``retries`` times."""
        box = self.page.locator(f".{css_class}")
        failed = self.page.get_by_text("Error displaying widget")
        for attempt in range(retries + 1):
            deadline = time.monotonic() + timeout
            while not box.is_visible() and not failed.first.is_visible():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: no .{css_class} widget after {timeout:.0f} s")
                self.page.wait_for_timeout(200)
            if box.is_visible():
                break
            if attempt == retries:
                raise AssertionError(f"{self.name}: JupyterLab could not display the widget: {failed.first.inner_text()}")
            self._rerun_cell_of(failed.first)
        box.scroll_into_view_if_needed()
        box.locator(".minijepa-figure img").wait_for(state="visible", timeout=timeout * 1000)
        self.page.wait_for_function(
            f"() => (document.querySelector('.{css_class} .minijepa-summary') || {{}}).textContent",
            timeout=timeout * 1000)
        return Explorer(self.page, box)

    def _rerun_cell_of(self, element) -> None:
        index = element.evaluate("""node => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            return nb.widgets.findIndex(cell => cell.node.contains(node));
        }""")
        self.page.evaluate(f"""() => {{
            const nb = window.jupyterapp.shell.currentWidget.content;
            nb.activeCellIndex = {index};
            window.jupyterapp.commands.execute('notebook:run-cell');
        }}""")


class Explorer:
    """An ipywidgets explorer on the page: its controls, its text (``.minijepa-summary``) and figure."""

    def __init__(self, page, box):
        self.page, self.box = page, box

    def summary(self) -> str:
        return self.box.locator(".minijepa-summary").inner_text().strip()

    def figure_src(self) -> str:
        return self.box.locator(".minijepa-figure img").first.get_attribute("src")

    def figure_png(self) -> bytes:
        import base64

        src = self.figure_src()
        assert src.startswith("data:image/png;base64,"), src[:60]
        return base64.b64decode(src.split(",", 1)[1])

    def control(self, label: str):
        """The widget whose description is ``label``."""
        import re

        name = self.page.locator("label.widget-label", has_text=re.compile(f"^{re.escape(label)}$"))
        return self.box.locator(".widget-inline-hbox", has=name).first

    def slider_value(self, label: str) -> str:
        return self.control(label).locator(".widget-readout").first.inner_text().strip()

    def press_slider(self, label: str, key: str, times: int = 1) -> None:
        """Move a slider from the keyboard, as a reader would: focus its handle and press ``key``."""
        handle = self.control(label).locator(".noUi-handle").first
        for _ in range(times):
            handle.focus()
            handle.press(key)

    def select(self, label: str, option: str) -> None:
        """Choose ``option`` (its text) in a dropdown."""
        self.control(label).locator("select").select_option(label=option)

    def wait_for(self, summary: str | None = None, changed_from: str | None = None, match=None,
                 timeout: float = 60.0) -> tuple[str, str]:
        """Wait until the text is ``summary`` (or ``match(text)`` is true), and the figure's src is no longer
        ``changed_from``; return (text, src). The explorers draw the figure first, then the text."""
        deadline = time.monotonic() + timeout
        while True:
            text, src = self.summary(), self.figure_src()
            text_ok = (summary is None or text == summary) and (match is None or match(text))
            if text_ok and (changed_from is None or src != changed_from):
                return text, src
            if time.monotonic() > deadline:
                raise TimeoutError(f"explorer did not update within {timeout:.0f} s: text {text!r} "
                                   f"(expected {summary!r}); figure changed: {src != changed_from}")
            self.page.wait_for_timeout(100)  # re-read the page


# ----------------------------------------------------------------------------------------------------
# The README's screenshots
# ----------------------------------------------------------------------------------------------------


def take_screenshots(out: Path) -> list[Path]:
    """Run notebooks 03 and 02 in JupyterLab and screenshot their explorers (docs/images/*.png)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="minijepa-screens-") as tmp:
        root = copy_notebooks(Path(tmp) / "notebooks")
        with jupyter_lab(root) as lab, chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, css_class, png in ((MASK_NOTEBOOK, "minijepa-mask-explorer", "mask_explorer.png"),
                                         (ATTENTION_NOTEBOOK, "minijepa-attention-explorer", "attention_explorer.png")):
                notebook = NotebookPage(page, lab, name).open()
                notebook.run_all()
                explorer = notebook.explorer(css_class)
                explorer.box.screenshot(path=str(out / png))
                written.append(out / png)
            page.close()
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder for the PNG files")
    args = parser.parse_args(argv)
    reason = browser_missing()
    if reason:
        sys.exit(f"cannot take screenshots: {reason}")
    for path in take_screenshots(args.out):
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
