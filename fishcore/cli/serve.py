"""The field server: `serve` (run it), `serve token add|list|revoke` (the devices it lets in)."""

from __future__ import annotations

import argparse
import sys

from fishcore.cli.flags import add_setting_flags
from fishcore.server.config import SERVER_SETTINGS
from fishcore.settings import SERVER_PORT as DEFAULT_PORT


def add_commands(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="the field server: the station's model and catch log over HTTP for phones and other systems "
        "(`serve token add NAME` lets a device in)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only; on a network: behind HTTPS)"
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    add_setting_flags(p, SERVER_SETTINGS)  # --per-minute, --burst, --max-body-mb, ...: from ServerConfig's Rules
    p.add_argument("--trusted-proxy", action="append", default=None, metavar="ADDRESS",
                   help="the reverse proxy's address, whose X-Forwarded-For names the client (default: this machine, "
                   "127.0.0.1 and ::1); again for several")  # fmt: skip
    p.set_defaults(run=cmd_serve)
    tokens = p.add_subparsers(dest="serve_command", required=False)
    t = tokens.add_parser("token", help="the devices and landing sites this station lets in")
    actions = t.add_subparsers(dest="token_command", required=True)
    q = actions.add_parser("add", help="make a token for a device or landing site (shown once; only its hash is kept)")
    q.add_argument("name", help='the device or landing site, e.g. "Muara Angke"')
    q.set_defaults(run=cmd_token)
    q = actions.add_parser("list", help="the devices, when each was made, last seen and revoked")
    q.set_defaults(run=cmd_token)
    q = actions.add_parser("revoke", help="stop a device's token letting anything in")
    q.add_argument("name", help="the device's name (or id)")
    q.set_defaults(run=cmd_token)
    a = tokens.add_parser("address", help="the address phones reach this station at (the start of every phone's link)")
    a.add_argument("url", nargs="?", default=None, help="e.g. https://fish.example.org (without it: show the one saved)")
    a.set_defaults(run=cmd_address)


def cmd_serve(args: argparse.Namespace) -> int:
    from fishcore.config import check_int
    from fishcore.errors import ConfigError
    from fishcore.server.app import serve
    from fishcore.server.config import ServerConfig

    check_int("port", args.port, 1, 65535)
    proxies = None
    if args.trusted_proxy:
        import ipaddress

        for address in args.trusted_proxy:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError("trusted_proxy", address, "must be an IP address, e.g. 10.0.0.2") from None
        proxies = tuple(args.trusted_proxy)
    given = {name: getattr(args, name) for name in SERVER_SETTINGS}
    config = ServerConfig.from_env(**given, trusted_proxies=proxies)
    print(f"field server on http://{args.host}:{args.port} (API description: /docs); Ctrl-C stops it", file=sys.stderr)
    serve(args.host, args.port, config)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from fishcore.store.catchlog import CatchLog
    from fishcore.store.catchlog.devices import Devices

    devices = Devices(CatchLog())
    if args.token_command == "add":
        device, token = devices.add(args.name)
        print(f"token for {device.name} (shown once; the station keeps only its hash):")
        print(token)
        from fishcore.store.station import phone_link, public_address

        address = public_address()
        if address:
            print("on the phone, open this link once with a network (the Phones page shows it as a QR code):")
            print(phone_link(address, token))
        else:
            print(f"on the phone, open the field app once with it: https://YOUR-STATION/#token={token}")
            print("(`fishcore serve address https://...` saves this station's address, so the link is printed whole)")
        return 0
    if args.token_command == "revoke":
        device = devices.revoke(args.name)
        print(f"revoked {device.name}: its token lets nothing in any more")
        return 0
    rows = devices.list()
    if not rows:
        print('no devices yet: `fishcore serve token add "NAME"` makes one')
    from fishcore.store.model_files import model_checksum
    from fishcore.store.workspace import Workspace

    active = Workspace.from_env().active_model()
    current = model_checksum(active) if active is not None else None
    for d in rows:
        state = f"revoked {d.revoked_at:%Y-%m-%d %H:%M}" if d.revoked_at else "active"
        seen = f"last seen {d.last_seen:%Y-%m-%d %H:%M}" if d.last_seen else "not seen yet"
        model = "no model yet" if d.model_checksum is None else "has the active model" if d.model_checksum == current else (
            "has an older model")
        print(f"{d.name}  ({d.id[:8]})  made {d.created_at:%Y-%m-%d %H:%M}  {seen}  {d.entries} entries sent  {model}  {state}")
    return 0


def cmd_address(args: argparse.Namespace) -> int:
    from fishcore.store.station import needs_https, public_address, set_public_address

    if args.url is None:
        address = public_address()
        print(address or "no address saved yet: `fishcore serve address https://fish.example.org`")
        return 0
    address = set_public_address(args.url)
    print(f"phones will open {address}")
    if needs_https(address):
        print("warning: a phone's camera and offline app need HTTPS on a network (docs/field-server.md)", file=sys.stderr)
    return 0
