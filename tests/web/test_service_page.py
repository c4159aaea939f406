"""The status page, /metrics and JSON logs of a real dispatcher process, in a real browser.

One `vault dispatcher run` process (local mode, `[web] port = 0`) ticks over a
real ops repo made from the template: a low proposal is merged and fired, a
medium one waits. Then an admin halts the vault and an action whose id and
context hold markup lands on main (halted, it stays waiting, so the page shows
both). Headless Chromium loads the page; the DOM it built must hold the markup
as text, never as elements. The screenshot is saved under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pygit2
import pytest

from opsvault.git.guard_hook import install_local_guard
from opsvault.web.logs import KEYS
from tests.cli.conftest import branch_with, template_files
from tests.conftest import SIGNATURE, init_repo
from tests.web.support import request, value, wait_for

NOOP = b'formula = "noop"\ncontext = "smoke test"\nparams = { message = "hi" }\n'
DOCS = (
    b'formula = "http-hook"\ncontext = "publish the docs"\nsecrets = ["HOOK_TOKEN"]\n'
    b'params = { url = "https://deploy.example.org/hooks/docs" }\n'
)
HOSTILE_ID = "<img src=x onerror=alert(1)>"
HOSTILE_CONTEXT = '<script>document.title="owned"</script><b>bold</b>'
HALT_NOTE = "halted by alice <i>for the browser test</i>"


@dataclass
class Service:
    ops: Path
    url: str
    process: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    def metrics(self) -> str:
        status, _, body = request(self.url + "metrics")
        assert status == 200
        return body.decode()


def _env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    ops = root / "ops"
    init_repo(ops, template_files())
    # what `vault init` does: the guard check passes (ADR 0018)
    install_local_guard(ops)
    branch_with(ops, "vault/noop-1", {"vault/actions/noop-1.toml": NOOP})
    branch_with(ops, "vault/docs-1", {"vault/actions/docs-1.toml": DOCS})
    config = root / "dispatcher.toml"
    config.write_text(
        f'[forge]\nkind = "local"\npath = "{ops}"\noperator = "alice"\n'
        f'[dispatcher]\nidentity = "vault-bot"\ninterval = "1s"\nstate_dir = "{root / "state"}"\n'
        '[runner]\nsandbox = "off"\n[web]\nport = 0\n'
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from opsvault.cli import main; sys.exit(main())",
            "dispatcher",
            "run",
            "--config",
            str(config),
        ],
        env=_env(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert process.stderr is not None
    stream = process.stderr
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()
    try:

        def url() -> str:
            for line in list(lines):
                if line.startswith("{") and "status page on " in line:
                    return str(json.loads(line)["message"]).rsplit(" ", 1)[-1]
            return ""

        wait_for(
            "the status page URL in the log",
            lambda: bool(url()) or bool(process.poll()),
        )
        assert process.poll() is None, "".join(lines)
        yield Service(ops, url(), process, lines)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)
        stream.close()


def _metric(service: Service, name: str, **labels: str) -> float:
    return value(service.metrics(), name, **labels)


def test_metrics_move_with_real_ticks(service: Service) -> None:
    wait_for(
        "noop-1 to be fired",
        lambda: _metric(service, "opsvault_outcomes_total", outcome="succeeded") == 1,
    )
    text = service.metrics()
    assert value(text, "opsvault_ticks_total", result="ok") >= 1
    assert value(text, "opsvault_tick_duration_seconds_count") >= 1
    assert value(text, "opsvault_last_successful_tick_timestamp_seconds") > 1.7e9
    assert value(text, "opsvault_decisions_total", event="merged", tier="low") == 1
    assert value(text, "opsvault_decisions_total", event="claimed", tier="low") == 1
    assert value(text, "opsvault_decisions_total", event="notified", tier="medium") >= 1
    assert value(text, "opsvault_git_pushes_total", result="ok") >= 2  # claim, result
    assert value(text, "opsvault_git_push_cas_losses_total") == 0
    assert value(text, "opsvault_actions_waiting", tier="medium", stage="approval") == 1
    assert value(text, "opsvault_actions_running") == 0
    assert value(text, "opsvault_steps_sandboxed") == 0  # runner.sandbox = "off"
    assert value(text, "opsvault_halted") == 0
    # the guard self-check ran before the first tick and found the hook in place
    assert value(text, "opsvault_guard_last_check_timestamp_seconds") > 1.7e9
    assert value(text, "opsvault_guard_drift", check="local-hook") == 0


def _halt_with_hostile_action(ops: Path) -> None:
    """An admin writes HALT; actions with markup in their id and context are on main."""
    repo = pygit2.Repository(str(ops))
    main = repo.branches["main"].peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(main.tree)
    for path, content in {
        "vault/HALT": HALT_NOTE.encode() + b"\n",
        f"vault/actions/{HOSTILE_ID}.toml": NOOP,  # an id no parser accepts
        "vault/actions/markup-1.toml": (
            f'formula = "noop"\ncontext = {json.dumps(HOSTILE_CONTEXT)}\n'
            'params = { message = "hi" }\n'
        ).encode(),
    }.items():
        index.add(
            pygit2.IndexEntry(
                path, repo.create_blob(content), pygit2.enums.FileMode.BLOB
            )
        )
    tree = index.write_tree(repo)
    repo.create_commit("refs/heads/main", SIGNATURE, SIGNATURE, "halt", tree, [main.id])


class _Dom(HTMLParser):
    """Elements (tag, attributes) and the text of each element with an id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.elements.append((tag, found))
        element_id = found.get("id")
        if element_id:
            self._open.append(element_id)
            self.text.setdefault(element_id, "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("table", "div", "p") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._open:
            self.text[element_id] += data


def chromium() -> str:
    """Return the Chromium to test with; in CI its absence fails the test, never skips it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is not None:
        return found
    message = "chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser test cannot run in CI: {message}")
    pytest.skip(message)


def _browser(
    binary: str, profile: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=_env(profile)
        | {"XDG_CONFIG_HOME": str(profile), "XDG_CACHE_HOME": str(profile)},
        check=False,
    )


def test_the_page_in_a_real_browser_escapes_what_proposers_wrote(
    service: Service, tmp_path: Path
) -> None:
    browser = chromium()
    wait_for(
        "noop-1 to be fired",
        lambda: _metric(service, "opsvault_outcomes_total", outcome="succeeded") == 1,
    )
    _halt_with_hostile_action(service.ops)
    wait_for("the vault to halt", lambda: _metric(service, "opsvault_halted") == 1)
    assert _metric(service, "opsvault_queue_depth") == 2  # halted: they stay waiting

    dumped = _browser(browser, tmp_path / "profile", "--dump-dom", service.url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = _Dom()
    dom.feed(dumped.stdout)
    tags = [tag for tag, _ in dom.elements]
    assert "table" in tags, dumped.stdout[:2000]
    # Markup from the proposer (and the HALT note) is text: no element came of it.
    assert "script" not in tags and "img" not in tags and "i" not in tags
    assert "b" not in tags
    assert not [
        (tag, name)
        for tag, attrs in dom.elements
        for name in attrs
        if name.startswith("on")
    ]
    assert HOSTILE_ID in dom.text["fire"] and HOSTILE_CONTEXT in dom.text["fire"]
    assert "HALTED" in dom.text["halt"] and HALT_NOTE in dom.text["halt"]
    assert "NOT sandboxed" in dom.text["sandbox"]
    assert "Forge requests: last tick 0" in dom.text["budget"]
    # What waits, with its tier and who may approve; what finished, with its record.
    assert (
        "medium" in dom.text["approval"] and "an admin (alice)" in dom.text["approval"]
    )
    assert "noop-1" in dom.text["outcomes"] and "succeeded" in dom.text["outcomes"]
    links = [a.get("href") or "" for tag, a in dom.elements if tag == "a"]
    (record,) = [h for h in links if h.startswith("/records/")]
    status, headers, body = request(service.url.rstrip("/") + record)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert json.loads(body)["outcome"] == "succeeded"
    assert "ok" in dom.text["ticks"]

    shot = tmp_path / "page.png"
    taken = _browser(
        browser,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,1400",
        service.url,
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert (
        shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    )


def test_logs_are_json_lines_with_stable_keys(service: Service) -> None:
    wait_for("a tick's log line", lambda: len(service.stderr) >= 2)
    records = []
    for line in list(service.stderr):
        if line.startswith("WARNING: steps are NOT sandboxed"):
            continue  # the loud start-up notice for people (announce_sandbox), not a log
        data = json.loads(line)
        assert tuple(data) == KEYS, line
        records.append(data)
    messages = [r["message"] for r in records]
    assert any(m.startswith("status page on http://127.0.0.1:") for m in messages)
    assert any("ticking every" in m for m in messages)
    assert all(r["level"] in ("DEBUG", "INFO", "WARNING", "ERROR") for r in records)


def test_without_chromium_the_browser_test_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI"):
        chromium()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception):
        chromium()
