"""Open a local HTML file in headless Chromium (Debian's `chromium`, from bootstrap.sh's package
list) and report what a reader's browser would meet: console errors, uncaught exceptions,
requests that leave the file, images that did not load, and a screenshot of the first screen.

The browser is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no port is opened and no
client library is needed. The flags keep Chromium off the network on its own account (no
background networking, component updates or sync): any request seen is the page's.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio",
         "--remote-debugging-pipe")
#: What the page is asked once it has loaded (an expression returning a JSON string).
INSPECT = """JSON.stringify({
  title: document.title,
  brokenImages: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  figures: document.querySelectorAll("figure.plot svg").length,
  missingPlots: document.querySelectorAll("p.missing").length,
  tables: document.querySelectorAll("table.sortable").length,
  details: document.querySelectorAll("details").length,
  firstHeading: (document.querySelector("h2") || {}).textContent || null
})"""
#: Clicks the first sortable header and says whether the script sorted (it runs under the
#: page's Content-Security-Policy: a hash mismatch would block it).
SORT_CLICK = """(() => {
  const th = document.querySelector("table.sortable th");
  if (!th) return "no table";
  th.click();
  return th.getAttribute("aria-sort") || "not sorted";
})()"""


class BrowserError(RuntimeError):
    """Chromium could not be started, or did not answer in time."""


@dataclass
class PageReport:
    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    figures: int = 0
    missing_plots: int = 0
    tables: int = 0
    details: int = 0
    first_heading: str | None = None
    sort_click: str = ""
    screenshot: bytes = b""

    def problems(self) -> list[str]:
        """Everything that must not happen on a self-contained report page."""
        return ([f"console error: {e}" for e in self.console_errors]
                + [f"uncaught exception: {e}" for e in self.exceptions]
                + [f"request leaving the file: {u}" for u in self.outside_requests]
                + [f"failed load: {f}" for f in self.failed_loads]
                + [f"image did not load: {i}" for i in self.broken_images]
                + ([f"{self.missing_plots} plot(s) not rendered"] if self.missing_plots else []))


class _Pipe:
    """The DevTools protocol over Chromium's pipe: send a command, read until its answer, keep
    every event seen on the way."""

    def __init__(self, to_browser: int, from_browser: int, timeout: float):
        self.to_browser, self.from_browser, self.deadline = to_browser, from_browser, time.monotonic() + timeout
        self.buffer, self.next_id, self.events = b"", 0, []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        answer = self._read_until(lambda m: m.get("id") == self.next_id)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_for(self, method: str) -> dict:
        seen = next((e for e in self.events if e.get("method") == method), None)
        return seen or self._read_until(lambda m: m.get("method") == method)

    def _read_until(self, wanted) -> dict:
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    return message
                self.events.append(message)
            if time.monotonic() > self.deadline:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self.from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe")
            self.buffer += chunk


def _start(profile: str) -> tuple[subprocess.Popen, int, int]:
    """Chromium with its DevTools pipe on fds 3 (commands in) and 4 (answers out)."""
    if shutil.which(CHROMIUM) is None:
        raise BrowserError(f"no `{CHROMIUM}` on PATH (bootstrap.sh installs Debian's package)")
    commands_r, commands_w = os.pipe()
    answers_r, answers_w = os.pipe()

    def to_fds_3_and_4():
        a, b = os.dup(commands_r), os.dup(answers_w)  # both above 4, so no dup2 below clobbers the other
        os.dup2(a, 3)
        os.dup2(b, 4)

    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               preexec_fn=to_fds_3_and_4, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(commands_r)
    os.close(answers_w)
    return process, commands_w, answers_r


def _text(args: list[dict]) -> str:
    return " ".join(str(a.get("value", a.get("description", ""))) for a in args)


def _collect(report: PageReport, events: list[dict]) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            report.console_errors.append(_text(params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            report.console_errors.append(params["entry"].get("text", ""))
        elif method == "Runtime.exceptionThrown":
            report.exceptions.append(params["exceptionDetails"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if url != report.url and not url.startswith("data:"):
                report.outside_requests.append(url)
        elif method == "Network.loadingFailed":
            report.failed_loads.append(params.get("errorText", ""))


def open_page(path: Path, width: int = 1280, height: int = 900, timeout: float = 60.0) -> PageReport:
    """Load `path` in a fresh headless Chromium; what happened, and a screenshot of the first
    width x height pixels (the screen a reader sees first)."""
    url = Path(path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="zcbench-chromium-")
    process, to_browser, from_browser = _start(profile)
    try:
        pipe = _Pipe(to_browser, from_browser, timeout)
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        pipe.events.clear()
        pipe.call("Page.navigate", {"url": url}, session)
        pipe.wait_for("Page.loadEventFired")
        report = PageReport(url=url)
        seen = json.loads(pipe.call("Runtime.evaluate", {"expression": INSPECT, "returnByValue": True},
                                    session)["result"]["value"])
        report.title, report.broken_images = seen["title"], seen["brokenImages"]
        report.figures, report.missing_plots = seen["figures"], seen["missingPlots"]
        report.tables, report.details, report.first_heading = seen["tables"], seen["details"], seen["firstHeading"]
        shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session)
        report.screenshot = base64.b64decode(shot["data"])
        report.sort_click = pipe.call("Runtime.evaluate", {"expression": SORT_CLICK, "returnByValue": True},
                                      session)["result"].get("value", "")
        _collect(report, pipe.events)
        try:
            pipe.call("Browser.close")
        except BrowserError:
            pass  # it may close the pipe before answering
        return report
    finally:
        os.close(to_browser)
        os.close(from_browser)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
