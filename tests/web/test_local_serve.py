"""`vault status --serve` and `vault demo` serve the page (README: where the page is)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli.conftest import branch_with, template_files
from tests.conftest import init_repo
from tests.web.support import request, wait_for

CLI = "import sys; from opsvault.cli import main; sys.exit(main())"


@contextmanager
def running(args: list[str], home: Path, prefix: str) -> Iterator[str]:
    """Run the CLI with *args*; yield the URL of the first stdout line starting with *prefix*."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    stream = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stream), daemon=True)
    reader.start()

    def url() -> str:
        for line in list(lines):
            if line.startswith(prefix):
                return line.removeprefix(prefix).split()[0]
        return ""

    try:
        wait_for(
            f"{prefix!r} in {args}", lambda: bool(url()) or process.poll() is not None
        )
        assert process.poll() is None, "".join(lines)
        yield url()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "".join(lines)
        reader.join(timeout=5)
        stream.close()


def test_status_serve_shows_the_proposals_of_an_ops_directory(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    init_repo(ops, template_files())
    branch_with(
        ops, "vault/<b>x</b>", {"vault/actions/deploy-1.toml": b'formula = "noop"\n'}
    )
    args = ["status", "--ops", str(ops), "--serve", "0"]
    with running(args, tmp_path, "status page: ") as url:
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = request(url)
        html = body.decode()
        assert status == 200 and headers["cache-control"] == "no-store"
        assert "vault status --serve" in html and "Running normally" in html
        assert "vault/&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
        assert request(url, "POST")[0] == 405
        assert request(url + "metrics")[2].startswith(b"# HELP")


def test_the_demo_prints_the_url_of_its_page(tmp_path: Path) -> None:
    args = ["demo", "--dir", str(tmp_path / "demo"), "--port", "0", "--interval", "1h"]
    with running(args, tmp_path, "status page: ") as url:
        wait_for(
            "the demo's first tick on its page",
            lambda: b"noop-smoke-20261121-1" in request(url)[2],
        )
        html = request(url)[2].decode()
        assert "dispatcher &#39;vault-bot&#39;" in html
        assert "Waiting for approval (high 2, medium 2, low 1)" in html


def test_serve_status_stops_on_its_event(tmp_path: Path) -> None:
    from opsvault.cli.status import fetch_status
    from opsvault.web.local import serve_status

    ops = tmp_path / "ops"
    init_repo(ops, template_files())
    stop = threading.Event()
    urls: list[str] = []
    thread = threading.Thread(
        target=serve_status,
        args=(ops, lambda now: fetch_status(ops, None, False, now)),
        kwargs={"bind": "127.0.0.1", "port": 0, "announce": urls.append, "stop": stop},
    )
    thread.start()
    try:
        wait_for("the URL", lambda: bool(urls))
        assert request(urls[0])[0] == 200
        assert request(urls[0], headers={"Host": "rebound.example"})[0] == 421
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    with pytest.raises(ConnectionRefusedError):  # the server closed with it
        request(urls[0])
