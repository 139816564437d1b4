"""The docs cannot go stale unnoticed: every page the README links to exists (and the heading a
link points at), the README's `make help` is what `make help` prints, and every table of
measured figures in docs/performance.md and docs/reliability.md names the command that produced
it, the date and the commit.

A *measured table* is a Markdown table (a header row, a `|---|` row, body rows) of one of those
two pages with a digit in any body cell; a table of words alone measures nothing. It carries its
provenance in one of two ways:

- the nearest non-blank line above it is a caption, ``Measured by `COMMAND` on YYYY-MM-DD at
  commit HASH`` and anything after (what `make bench` and the crash suite print); or
- its header has the columns ``command``, ``date`` and ``commit``, filled on every row (a table
  whose rows come from different runs).

A date must be a real one, not in the future; a commit must be a commit of this repository (a
hash that a rebase dropped, or a typo, fails) and not a working tree with uncommitted changes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.harness import ROOT
from tools import provenance

README = ROOT / "README.md"
MEASURED_PAGES = ("docs/performance.md", "docs/reliability.md")
CAPTION = re.compile(
    r"^Measured by `(?P<command>[^`]+)` on (?P<date>\d{4}-\d{2}-\d{2}) "
    r"at commit (?P<commit>[0-9a-f]{7,40})\b(?P<rest>.*)$"
)
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


@dataclass(frozen=True)
class Table:
    line: int  # 1-based line of the header row
    header: list[str]
    rows: list[list[str]]
    above: str  # the nearest non-blank line above the header, stripped


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(text: str) -> list[Table]:
    """The Markdown tables of ``text`` outside fenced code blocks."""
    lines = text.splitlines()
    found, fenced, n = [], False, 0
    while n < len(lines):
        line = lines[n]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif (
            not fenced
            and line.startswith("|")
            and n + 1 < len(lines)
            and SEPARATOR.match(lines[n + 1])
        ):
            end = n + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            above = next((x.strip() for x in reversed(lines[:n]) if x.strip()), "")
            rows = [cells(row) for row in lines[n + 2 : end]]
            found.append(Table(n + 1, cells(line), rows, above))
            n = end
            continue
        n += 1
    return found


def measured(table: Table) -> bool:
    return any(re.search(r"\d", cell) for row in table.rows for cell in row)


def known_commit(commit: str) -> bool | None:
    """Whether ``commit`` names a commit of this repository; None when that cannot be told (no
    git, not a checkout, a shallow clone)."""
    if shutil.which("git") is None:
        return None
    shallow = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if shallow.returncode != 0 or shallow.stdout.strip() != "false":
        return None
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"],
        cwd=ROOT, capture_output=True, check=False,
    )  # fmt: skip
    return found.returncode == 0


def provenance_faults(where: str, command: str, day: str, commit: str, rest: str) -> list[str]:
    faults = []
    if not command.strip():
        faults.append(f"{where}: no command")
    try:
        if date.fromisoformat(day) > datetime.now(UTC).date():
            faults.append(f"{where}: date {day} is in the future")
    except ValueError:
        faults.append(f"{where}: {day} is not a date")
    if "uncommitted" in rest:
        faults.append(f"{where}: measured on uncommitted changes, not at a commit")
    if known_commit(commit) is False:
        faults.append(f"{where}: {commit} is not a commit of this repository")
    return faults


def table_faults(page: str, table: Table) -> list[str]:
    """Why ``table`` does not say where its figures come from (nothing when it does)."""
    where = f"{page}:{table.line}"
    columns = [name.lower() for name in table.header]
    if {"command", "date", "commit"} <= set(columns):
        faults = []
        for row in table.rows:
            value = dict(zip(columns, row, strict=False))
            command = value.get("command", "")
            if not command.strip("` "):
                faults.append(f"{where}: a row without its command: {row}")
                continue
            commit = value.get("commit", "")
            if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
                faults.append(f"{where}: a row without a commit hash: {row}")
                continue
            faults += provenance_faults(where, command, value.get("date", ""), commit, "")
        return faults
    caption = CAPTION.match(table.above)
    if caption is None:
        return [f"{where}: a measured table without its 'Measured by' line: {table.above!r}"]
    return provenance_faults(where, *caption.group("command", "date", "commit", "rest"))


@pytest.mark.parametrize("page", MEASURED_PAGES)
def test_every_measured_table_names_its_command_date_and_commit(page: str) -> None:
    found = [t for t in tables((ROOT / page).read_text()) if measured(t)]
    assert found, f"{page} has no table of figures: the parser or the page is wrong"
    faults = [fault for table in found for fault in table_faults(page, table)]
    assert not faults


def test_a_measured_table_without_provenance_is_caught() -> None:
    """The rule above, on tables written here: each fails for its own defect."""
    table = "| measure | value |\n|---|---|\n| rate | 96,576 rec/s |\n"
    good = "Measured by `make bench` on 2026-12-02 at commit ef19c50; 2 CPUs.\n\n" + table
    bad = {
        "no caption": "Some words about the run.\n\n" + table,
        "no commit": "Measured by `make bench` on 2026-12-02; 2 CPUs.\n\n" + table,
        "no date": "Measured by `make bench` at commit ef19c50.\n\n" + table,
        "a future date": "Measured by `make bench` on 2999-01-01 at commit ef19c50.\n\n" + table,
        "uncommitted": "Measured by `make bench` on 2026-12-02 at commit ef19c50 with "
        "uncommitted changes.\n\n" + table,
        "a row without a commit": "| change | count | command | date | commit |\n|---|---|---|"
        "---|---|\n| native tier | 23,603 | `make bench-parse` | 2026-12-02 | |\n",
    }
    [parsed] = tables(good)
    assert measured(parsed) and table_faults("good", parsed) == []
    for name, text in bad.items():
        [parsed] = tables(text)
        assert table_faults(name, parsed), name
    words = "| scenario | what it proves |\n|---|---|\n| SIGTERM | drains and exits |\n"
    assert not measured(tables(words)[0])


def test_an_unknown_commit_is_caught() -> None:
    if known_commit("ef19c50") is None:
        pytest.skip("not a full git checkout: commits cannot be looked up")
    assert known_commit("ef19c50") is True  # the commit the bench tables name
    assert known_commit("0000000") is False


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_doc_the_readme_links_to_exists_with_its_heading() -> None:
    text = README.read_text()
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", text)
    pages = {page for page, _ in links}
    assert {"docs/interface.md", "docs/performance.md", "docs/reliability.md"} <= pages
    for page, anchor in links:
        path = ROOT / page
        assert path.is_file(), f"README links to {page}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+\s+(.*)$", path.read_text(), flags=re.M)
            assert anchor in {slug(h) for h in headings}, f"{page} has no heading #{anchor}"
    mentioned = set(re.findall(r"\bdocs/[\w.-]+\.md\b", text))
    assert all((ROOT / page).is_file() for page in mentioned), mentioned


def test_the_readme_shows_what_make_help_prints() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    printed = subprocess.run(
        [make, "-s", "--no-print-directory", "help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    printed = re.sub(r"\x1b\[[0-9;]*m", "", printed).rstrip("\n")
    text = README.read_text()
    shown = re.search(r"^\$ make help\n(.*?)\n```", text, flags=re.M | re.S)
    assert shown, "the README shows no `$ make help`"
    assert shown.group(1) == printed, "README's make help differs: paste `make help` again"


def test_the_line_make_bench_and_the_crash_suite_print_passes_the_rule(tmp_path: Path) -> None:
    """tools/provenance.py writes the caption the docs need: the command as given, today's date
    and this checkout's commit (looked up here with git), which the rule above accepts unless
    the tree has uncommitted changes."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    line = provenance.caption(
        "python -m bench --orders 200000", note="2 CPUs", when=datetime(2026, 12, 8, tzinfo=UTC)
    )
    caption = CAPTION.match(line)
    assert caption, line
    assert caption.group("command", "date") == ("python -m bench --orders 200000", "2026-12-08")
    assert caption.group("commit") == head.stdout.strip()
    assert line.endswith("; 2 CPUs.")
    dirty = tmp_path / "repo"
    dirty.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q"], ["add", "f"], ["commit", "-qm", "f"]):
        if args[0] == "add":
            (dirty / "f").write_text("1")
        subprocess.run([*git, *args], cwd=dirty, check=True)
    clean = provenance.caption("x", root=dirty)
    (dirty / "f").write_text("2")
    changed = provenance.caption("x", root=dirty)
    assert "uncommitted" not in clean and CAPTION.match(clean)
    assert "with uncommitted changes" in changed
    assert "at commit unknown." in provenance.caption("x", root=tmp_path / "nowhere")
