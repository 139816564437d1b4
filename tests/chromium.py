"""Debian's Chromium, headless, for the dashboard tests: ``--dump-dom`` after the page's scripts
ran (``--virtual-time-budget``), ``--screenshot``, and the requests the page made, read from
Chromium's own net log (``--log-net-log``). ``Session`` drives one browser through the DevTools
protocol over a pipe (``--remote-debugging-pipe``: no port, no extra package), for what a page
does when its reader uses it: choose in a control, reload.

Chromium makes requests of its own (update checks, account lookups) even with background
networking disabled; the net log marks them with the initiator "not an origin". A request that
a page makes carries the page's origin ("null" for a file:// page), so those are told apart.
Every host but 127.0.0.1 is also made to fail to resolve, so nothing leaves the machine even if
a page asked for it: the request still shows in the net log, and the tests fail on it.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
BROWSER_OWN = "not an origin"
#: An absolute or protocol-relative URL, or a CSS url(): what a self-contained page must not hold.
ABSOLUTE_URL = re.compile(r"(?i)\b(?:https?|wss?|ftp):|(?:src|href|action)\s*=\s*[\"']?//|url\(")


def chromium() -> str:
    """The chromium binary, or a skip saying how to get it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    return path


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]
    text: str


@dataclass
class Page:
    dom: str
    requests: list[tuple[str, str]]  # (url, initiator) of every request the page made
    elements: dict[str, Element] = field(default_factory=dict)  # by id

    def rendered(self, element_id: str) -> dict[str, Any]:
        """The parsed data-rendered JSON of a chart card (decimals kept exact)."""
        text = self.elements[element_id].attrs.get("data-rendered")
        assert text is not None, f"{element_id} has no data-rendered"
        value: dict[str, Any] = json.loads(text, parse_float=Decimal)
        return value

    def hosts(self) -> set[str]:
        return {urlsplit(url).hostname or "" for url, _ in self.requests}


class _Collector(HTMLParser):
    """Elements with an id: their attributes and their text (nested text included)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, Element] = {}
        self._open: list[tuple[str, str | None, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "body":
            values.setdefault("id", "body")
        if tag in ("meta", "link", "br", "img", "input"):
            if "id" in values:
                self.found[values["id"]] = Element(tag, values, "")
            return
        self._open.append((tag, values.get("id"), values, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, element_id, attrs, text = self._open.pop()
            if element_id is not None:
                self.found[element_id] = Element(open_tag, attrs, "".join(text).strip())
            if self._open:
                self._open[-1][3].extend(text)
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][3].append(data)


def page_requests(net_log: Path) -> list[tuple[str, str]]:
    """(url, initiator) of each URL request not started by the browser itself."""
    text = net_log.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short still holds whole events before the cut
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        params = event.get("params", {})
        if types.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params:
            initiator = params.get("initiator", BROWSER_OWN)
            if initiator != BROWSER_OWN:
                found.append((params["url"], initiator))
    return found


def load(
    url: str,
    workdir: Path,
    *,
    budget_ms: int = 8000,
    screenshot: Path | None = None,
    timeout: float = 90,
) -> Page:
    """Open ``url`` in a fresh profile, let its scripts run, return its DOM and its requests."""
    binary = chromium()
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    net_log = profile.with_name(profile.name + ".netlog.json")
    command = [
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--log-net-log={net_log}",
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1400,1900",
    ]
    command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    # A session of its own, so that a hung run is ended with its renderer and GPU processes.
    browser = subprocess.Popen(
        [*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        out, err = browser.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"chromium did not finish {url} within {timeout} s")
    dom = out.decode()
    assert browser.returncode == 0, f"chromium exited {browser.returncode}: {err[-2000:]!r}"
    return parse(dom, page_requests(net_log))


def parse(dom: str, requests: list[tuple[str, str]]) -> Page:
    collector = _Collector()
    collector.feed(dom)
    return Page(dom, requests, collector.found)


# Runs in the child before Chromium: puts the two pipe ends it is given on fds 3 and 4, then
# becomes Chromium (a preexec_fn would do the same, but is unsafe in a process with threads).
ON_FDS_3_AND_4 = (
    "import os, sys; ends = [int(fd) for fd in sys.argv[1:3]]; os.dup2(ends[0], 3); "
    "os.dup2(ends[1], 4); [os.close(fd) for fd in ends]; os.execv(sys.argv[3], sys.argv[3:])"
)


class Session:
    """One headless Chromium driven over the DevTools protocol on a pipe (``with Session(...)
    as browser:``): open a URL, evaluate JavaScript in the page, wait for a condition, read the
    DOM. Each message is JSON ending in a NUL byte, written to the browser's fd 3 and read
    from its fd 4."""

    def __init__(self, workdir: Path, *, window: str = "1400,1900", timeout: float = 60) -> None:
        self.timeout = timeout
        profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
        to_browser, from_browser = os.pipe(), os.pipe()
        # The browser's ends, first moved above 4 so that placing them on 3 and 4 in the child
        # cannot overwrite one with the other.
        theirs = (fcntl.fcntl(to_browser[0], fcntl.F_DUPFD, 10),
                  fcntl.fcntl(from_browser[1], fcntl.F_DUPFD, 10))  # fmt: skip
        for fd in (to_browser[0], from_browser[1]):
            os.close(fd)
        command = [sys.executable, "-c", ON_FDS_3_AND_4, *map(str, theirs), chromium(), *FLAGS,
                   f"--user-data-dir={profile}", f"--window-size={window}",
                   "--remote-debugging-pipe", "about:blank"]  # fmt: skip
        self._browser = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=theirs,
            start_new_session=True,
        )  # fmt: skip
        for fd in theirs:
            os.close(fd)
        self._out, self._in = to_browser[1], from_browser[0]
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        attached = self.send("Target.attachToTarget", targetId=page, flatten=True)
        self._session = attached["sessionId"]

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._browser.poll() is None:
            os.killpg(self._browser.pid, signal.SIGKILL)
        self._browser.wait(30)
        for fd in (self._out, self._in):
            os.close(fd)

    def send(self, method: str, **params: Any) -> Any:
        """One command; its result (an error answer fails the test)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next_id:
                    assert "error" not in answer, f"{method}: {answer['error']}"
                    return answer.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                pytest.fail(f"chromium did not answer {method} within {self.timeout} s")
            chunk = os.read(self._in, 1 << 16)
            assert chunk, f"chromium exited during {method}"
            self._buffer += chunk

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 60) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                tail = self.evaluate("document.body ? document.body.outerHTML.slice(-1500) : ''")
                pytest.fail(f"not true within {timeout} s: {expression}\n{tail}")
            time.sleep(0.2)
        return value

    def page(self) -> Page:
        """The DOM as it is now, parsed like ``load``'s (requests are not recorded here)."""
        return parse(self.evaluate("document.documentElement.outerHTML"), [])

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
