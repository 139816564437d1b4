"""Debian's Chromium, headless, for the dashboard tests: ``--dump-dom`` after the page's scripts
ran (``--virtual-time-budget``), ``--screenshot``, and the requests the page made, read from
Chromium's own net log (``--log-net-log``).

Chromium makes requests of its own (update checks, account lookups) even with background
networking disabled; the net log marks them with the initiator "not an origin". A request that
a page makes carries the page's origin ("null" for a file:// page), so those are told apart.
Every host but 127.0.0.1 is also made to fail to resolve, so nothing leaves the machine even if
a page asked for it: the request still shows in the net log, and the tests fail on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
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
    collector = _Collector()
    collector.feed(dom)
    return Page(dom, page_requests(net_log), collector.found)
