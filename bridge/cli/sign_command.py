"""``share-bridge sign``: the headers (and a curl line) a partner sends, or the request itself,
to test a partner's setup."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx

from bridge import auth, config
from bridge.cli._common import add_config_argument, env_default
from bridge.errors import ConfigError

SEND_TIMEOUT_S = 10.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="print the headers and a curl line a partner would send",
        description="Sign a notification body as PARTNER would, with its first configured secret.",
    )
    parser.add_argument("--partner", required=True, help="the partner's name in the config")
    parser.add_argument("--body", required=True, help="the file holding the JSON body to sign")
    add_config_argument(parser)
    parser.add_argument(
        "--url",
        default=env_default("BRIDGE_URL"),
        help="the bridge's base URL (default: $BRIDGE_URL, then http://<server.host>:<server.port>)",
    )
    parser.add_argument(
        "--send",
        action="store_true",
        help="POST it to the bridge as well: print the notification id (exit 0 on 200/202), "
        "or the answer (exit 1)",
    )
    parser.set_defaults(run=run)


def base_url(server: config.ServerSettings) -> str:
    """Where a local client reaches the server: a wildcard bind address becomes loopback."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(server.host, server.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def shares_url(url: str, partner: str) -> str:
    return f"{url.rstrip('/')}/v1/partners/{quote(partner, safe='')}/shares"


def curl_line(url: str, partner: str, headers: dict[str, str], body_file: str) -> str:
    words = ["curl", "-X", "POST", shlex.quote(shares_url(url, partner))]
    for name, value in headers.items():
        words += ["-H", shlex.quote(f"{name}: {value}")]
    words += ["--data-binary", shlex.quote(f"@{body_file}")]
    return " ".join(words)


def send(target: str, headers: dict[str, str], body: bytes) -> int:
    """POST the signed body; the notification id on stdout when the bridge took it."""
    try:
        answer = httpx.post(
            target,
            content=body,
            headers={"content-type": "application/json", **headers},
            timeout=SEND_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        return _error(f"cannot reach {target}: {exc}")
    if answer.status_code in (200, 202):
        sys.stdout.write(f"{answer.json()['id']}\n")
        return 0
    return _error(f"{target} answered {answer.status_code}: {answer.text}")


def _error(message: str) -> int:
    sys.stderr.write(f"share-bridge sign: {message}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        settings = config.load(Path(args.config))
    except ConfigError as exc:  # also an unreadable file: load() never raises anything else
        return _error(f"invalid configuration:\n{exc}")
    partner = settings.partners.get(args.partner)
    if partner is None:
        known = ", ".join(sorted(settings.partners)) or "none"
        return _error(f"unknown partner {args.partner!r} (configured: {known})")
    try:
        body = Path(args.body).read_bytes()
    except OSError as exc:
        return _error(f"cannot read the body file {args.body}: {exc.strerror}")
    try:
        headers = auth.partner_headers(
            partner.auth, body, now=time.time(), message_id=f"msg_{uuid.uuid4().hex}"
        )
    except ValueError as exc:
        return _error(f"cannot sign for partner {args.partner!r}: {exc}")
    url = args.url or base_url(settings.server)
    if args.send:
        return send(shares_url(url, args.partner), headers, body)
    lines = [f"{name}: {value}" for name, value in headers.items()]
    sys.stdout.write("\n".join([*lines, "", curl_line(url, args.partner, headers, args.body)]))
    sys.stdout.write("\n")
    return 0
