"""The station's own settings and the link that connects a phone to it.

The public address is where phones reach the field server, given once by the operator (the Phones page, or
FISHCORE_PUBLIC_URL): for phones on a network the HTTPS name of the reverse proxy in front of the server
(docs/field-server.md). It is kept in ``station.json`` in the catch log's folder, per station, since several
landing sites may share one database. A phone's link is that address with the device's token after ``#token=``:
the token stays on the phone (a fragment never reaches a server's logs), and the QR code is shown once, as the
token is.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

from fishcore.errors import ConfigError
from fishcore.settings import LOOPBACK, Paths, public_url
from fishcore.store.jsonfile import read_json, write_json

STATION_FILE = "station.json"
ADDRESS_MAX = 300


def check_address(address: str) -> str:
    """A public address as typed, checked: http(s), a host, no query or fragment; without a trailing '/'."""
    text = (address or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("public address", text, "must be a web address such as https://fish.example.org")
    if parts.query or parts.fragment or len(text) > ADDRESS_MAX or any(c.isspace() for c in text):
        raise ConfigError("public address", text, "must be only the address, e.g. https://fish.example.org/station")
    return text.rstrip("/")


def needs_https(address: str) -> bool:
    """True for a plain-http address a phone reaches over a network (its camera and offline app need HTTPS)."""
    parts = urlsplit(address)
    return parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK


def public_address(paths: Paths | None = None) -> str | None:
    """The station's public address: FISHCORE_PUBLIC_URL, else the one saved on the Phones page, else None."""
    from_env = public_url()
    if from_env:
        return check_address(from_env)
    saved = read_json((paths or Paths.from_env()).catchlog / STATION_FILE).get("public_address")
    return saved if isinstance(saved, str) and saved else None


def set_public_address(address: str, paths: Paths | None = None) -> str:
    """Save the public address (checked first); the address as kept."""
    paths = paths or Paths.from_env()
    checked = check_address(address)
    paths.catchlog.mkdir(parents=True, exist_ok=True)
    settings = read_json(paths.catchlog / STATION_FILE)
    write_json(paths.catchlog / STATION_FILE, {**settings, "public_address": checked}, indent=1)
    return checked


def phone_link(address: str, token: str) -> str:
    """The link that opens the field app on a phone and connects it with its token."""
    return f"{check_address(address)}/#token={token}"


def qr_png(text: str, scale: int = 8) -> bytes:
    """A QR code of ``text`` as PNG bytes (error correction M, a quiet zone of 4 modules)."""
    import segno

    buf = io.BytesIO()
    segno.make_qr(text, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()
