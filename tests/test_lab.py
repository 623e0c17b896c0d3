"""`make lab`, the student's entry point: registers the project's kernel and serves notebooks/ in JupyterLab.

The target's own command runs here (``make lab`` with this test's virtual environment as VENV), with the
user's Jupyter folders replaced by temporary ones (JUPYTER_DATA_DIR and friends), so nothing of the real
user's set-up is touched. The server listens on a free local port; it is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)

spec = importlib.util.spec_from_file_location("minijepa_screenshots_lab", ROOT / "tools" / "screenshots.py")
harness = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = harness  # (dataclasses look their module up)
spec.loader.exec_module(harness)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="needs make"),
    pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="make lab serves a virtual environment's python"),
]


def make_command(*args: str) -> list[str]:
    # -o: take the venv's install stamp as up to date (this venv runs the tests, so it is installed).
    return ["make", "--no-print-directory", "-C", str(ROOT), "-o", f"{VENV}/.installed", "lab", f"VENV={VENV}", *args]


@pytest.fixture
def jupyter_env(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for name in ("DATA", "CONFIG", "RUNTIME"):
        env[f"JUPYTER_{name}_DIR"] = str(tmp_path / name.lower())
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    return env


def test_make_lab_prints_no_browser_only_without_a_display(jupyter_env):
    headless = subprocess.run(make_command("-n"), env=jupyter_env, capture_output=True, text=True, check=True).stdout
    with_display = subprocess.run(make_command("-n", "DISPLAY=:0"), env=jupyter_env, capture_output=True, text=True,
                                  check=True).stdout
    assert "--no-browser" in headless and "--no-browser" not in with_display
    assert f"{VENV}/bin/python -m ipykernel install --user --name minijepa" in headless
    assert "--notebook-dir=notebooks" in headless


def test_make_lab_registers_the_kernel_and_serves_the_notebooks(jupyter_env, tmp_path, monkeypatch):
    port, token = harness.free_port(), secrets.token_hex(16)
    lab_args = (f"LAB_ARGS=--ip=127.0.0.1 --port={port} --port-retries=0 --IdentityProvider.token={token} "
                "--ServerApp.terminals_enabled=False --LabApp.news_url=None "
                "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate")
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        make = subprocess.Popen(make_command(lab_args), env=jupyter_env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        # 1. The server answers on the port (polling its status endpoint, not sleeping a fixed time).
        deadline = time.monotonic() + 120
        while True:
            assert make.poll() is None, f"make lab exited with {make.returncode}:\n{log.read_text()[-3000:]}"
            with contextlib.suppress(OSError):
                request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                                 headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                break
            assert time.monotonic() < deadline, f"no server on port {port}:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/contents", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            served = {item["name"] for item in json.loads(response.read())["content"]}
        assert "00_big_picture.ipynb" in served  # it serves notebooks/
        # 2. The kernel is registered, for this venv's python.
        listed = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"], env=jupyter_env,
                                capture_output=True, text=True, check=True)
        kernel = json.loads(listed.stdout)["kernelspecs"]["minijepa"]
        assert Path(kernel["resource_dir"]).is_relative_to(Path(jupyter_env["JUPYTER_DATA_DIR"]))
        assert Path(kernel["spec"]["argv"][0]) == VENV / "bin" / "python" or \
            Path(kernel["spec"]["argv"][0]).resolve() == Path(sys.executable).resolve()
        # 3. A notebook executed through that kernel imports minijepa from the venv.
        from nbclient import NotebookClient

        for key in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PLATFORM_DIRS"):
            monkeypatch.setenv(key, jupyter_env[key])
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import sys, minijepa\nprint(sys.prefix)\nprint(minijepa.__file__)")])
        NotebookClient(nb, kernel_name="minijepa", timeout=120).execute()
        prefix, module = nb.cells[0].outputs[0]["text"].split()
        assert Path(prefix) == VENV and Path(module).is_relative_to(ROOT)
        # 4. Stopped by its pid (from the server's own runtime file), and make ends with it.
        servers = subprocess.run([sys.executable, "-m", "jupyter", "server", "list", "--json"], env=jupyter_env,
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        pids = [info["pid"] for info in map(json.loads, servers) if info.get("port") == port]
        assert len(pids) == 1, servers
        os.kill(pids[0], signal.SIGTERM)
        make.wait(timeout=60)
        with pytest.raises(ProcessLookupError):
            os.kill(pids[0], 0)
    finally:
        harness.stop_process_group(make)
