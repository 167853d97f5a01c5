"""A minimal headless-Chromium driver over the DevTools protocol (no Selenium, no browser download).

Used by the rendered-tutorial test: open a page, wait until it has loaded, evaluate JavaScript in it, and
collect JavaScript exceptions and console errors.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import websocket  # websocket-client

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]


MISSING = "no chromium on PATH: install a headless Chromium (Debian: apt-get install chromium; .ci/run does)"


def find_chromium() -> str:
    """Path of the chromium executable. Missing, the test fails in CI (``CI`` set) and is skipped elsewhere,
    with the reason: tests never install system packages."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return path


class Browser:
    """``with Browser() as b: b.open(url); b.evaluate("1 + 1")``; ``b.errors`` lists JS errors seen."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self.errors: list[str] = []
        self.failed_requests: list[str] = []
        self._id = 0

    def __enter__(self):
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        self._proc = subprocess.Popen([find_chromium(), *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.time() + self.timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self._proc.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t["type"] == "page")
        self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=self.timeout)
        for domain in ("Runtime", "Log", "Page", "Network"):
            self._call(f"{domain}.enable")
        return self

    def __exit__(self, *exc):
        self._ws.close()
        self._proc.terminate()
        self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _record(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Network.loadingFailed":
            self.failed_requests.append(params.get("errorText", "") + " " + params.get("requestId", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            if params["entry"].get("source") != "network":  # offline CDN fetches are listed apart
                self.errors.append(params["entry"].get("text", ""))

    def _call(self, method: str, **params) -> dict:
        self._id += 1
        self._ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)

    def open(self, url: str, settle: float = 2.0) -> None:
        """Navigate and wait for the load event, then let scripts run for ``settle`` seconds."""
        self._call("Page.navigate", url=url)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            message = json.loads(self._ws.recv())
            self._record(message)
            if message.get("method") == "Page.loadEventFired":
                break
        end = time.time() + settle
        while time.time() < end:
            self.evaluate("0")
            time.sleep(0.2)

    def screenshot(self, x: float, y: float, width: float, height: float) -> bytes:
        """PNG bytes of a region of the page (CSS pixels, page coordinates)."""
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        shot = self._call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        return base64.b64decode(shot["data"])

    def evaluate(self, expression: str):
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")
