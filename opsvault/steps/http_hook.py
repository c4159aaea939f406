"""Call an HTTP endpoint (e.g. a deploy hook), taking secret header values from the environment.

Usage::

    python -m opsvault.steps.http_hook --url https://ci.example/hooks/deploy \\
        --method POST --header-from-env 'Authorization=Bearer HOOK_TOKEN'

``--header-from-env NAME=[PREFIX ]VAR`` sends header NAME with the value of the
environment variable VAR, optionally after PREFIX (``Bearer``); the secret is
never on the command line. Prints the status code and a short excerpt of the
body. Exit status: 0 for 2xx, 1 for any other status or a transport error, 2 for
usage errors. Redirects are not followed, so a secret header is never replayed
to another host.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import httpx

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BODY_READ_LIMIT = 64 * 1024


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m opsvault.steps.http_hook")
    parser.add_argument("--url", required=True)
    parser.add_argument(
        "--method",
        default="POST",
        choices=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    )
    parser.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--header-from-env", action="append", default=[], metavar="NAME=[PREFIX ]VAR"
    )
    parser.add_argument("--data", default=None, help="request body (UTF-8 text)")
    parser.add_argument("--content-type", default=None)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--excerpt", type=int, default=300, help="body characters to print"
    )
    return parser


def _split(spec: str, option: str) -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    if not sep or not _HEADER_NAME.fullmatch(name):
        raise UsageError(
            f"{option} {spec!r}: expected NAME=VALUE with a valid header name"
        )
    return name, rest


def build_headers(
    plain: Sequence[str], from_env: Sequence[str], environ: Mapping[str, str]
) -> dict[str, str]:
    """Return the request headers; raise UsageError for a bad spec or a missing variable."""
    headers: dict[str, str] = {}
    for spec in plain:
        name, value = _split(spec, "--header")
        headers[name] = value
    for spec in from_env:
        name, rest = _split(spec, "--header-from-env")
        prefix, _, var = rest.rpartition(" ")
        if not _ENV_NAME.fullmatch(var):
            raise UsageError(
                f"--header-from-env {spec!r}: {var!r} is not a variable name"
            )
        value = environ.get(var, "")
        if not value:
            raise UsageError(
                f"--header-from-env {spec!r}: environment variable {var!r} is empty"
            )
        headers[name] = f"{prefix} {value}" if prefix else value
    return headers


def _excerpt(body: bytes, limit: int) -> str:
    text = body.decode("utf-8", errors="replace")
    text = " ".join(text.split())  # one line: keep the runner's output tail readable
    return text if len(text) <= limit else text[:limit] + "…"


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run the hook and return the exit status."""
    stream = out or sys.stdout
    # A program of its own, run as a step: its environment is its input.
    env = os.environ if environ is None else environ
    args = _parser().parse_args(argv)
    try:
        headers = build_headers(args.header, args.header_from_env, env)
        if not args.url.startswith(("https://", "http://")):
            raise UsageError(
                f"--url {args.url!r}: only http:// and https:// are allowed"
            )
    except UsageError as exc:
        stream.write(f"http_hook: {exc}\n")
        return 2
    if args.content_type:
        headers["Content-Type"] = args.content_type
    content = args.data.encode() if args.data is not None else None
    # This program is a step, not opsvault's forge client, so it handles its own
    # transport errors: they become a line of output and exit status 1.
    try:
        with (
            httpx.Client(
                timeout=args.timeout, follow_redirects=False, transport=transport
            ) as client,
            client.stream(
                args.method, args.url, headers=headers, content=content
            ) as response,
        ):
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= _BODY_READ_LIMIT:
                    break
    except httpx.HTTPError as exc:
        stream.write(f"http_hook: {args.method} failed: {type(exc).__name__}: {exc}\n")
        return 1
    stream.write(f"http_hook: {args.method} -> HTTP {response.status_code}\n")
    if body:
        stream.write(f"body: {_excerpt(body, args.excerpt)}\n")
    return 0 if response.is_success else 1


if __name__ == "__main__":
    sys.exit(main())
