"""Who may: a device's token (one dependency every protected route declares), requests per token per minute, and
the largest request body. A refused request writes nothing."""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fishcore.server.errors import ApiError, body
from fishcore.store.catchlog.devices import Device

_bearer = HTTPBearer(auto_error=False, description="the token `fishcore serve token add NAME` printed for this device")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class RateLimit:
    """A token bucket per device: ``per_minute`` requests a minute on average, up to ``burst`` at once."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate if self.rate > 0 else 60.0


def device(request: Request, credentials: Credentials) -> Device:
    """The device sending the request; 401 without a valid token, 429 when it sends too many."""
    station = request.app.state.station
    found = station.verify(credentials.credentials if credentials else None)
    if found is None:
        reason = "no token: send the device's token as 'Authorization: Bearer TOKEN'" if credentials is None else (
            "this token is not valid here (unknown or revoked)"
        )
        raise ApiError(401, "unauthorized", reason, "Authorization", {"WWW-Authenticate": "Bearer"})
    wait = station.rate.take(found.id)
    if wait > 0:
        raise ApiError(429, "too_many_requests", f"too many requests from {found.name}: try again in {wait:.0f} s",
                       headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip
    return found


def device_or_open(request: Request, credentials: Credentials) -> Device | None:
    """The model download: open when the station says so, else as any protected route."""
    if request.app.state.station.open_model and credentials is None:
        return None
    return device(request, credentials)


DeviceDep = Annotated[Device, Depends(device)]
OpenDeviceDep = Annotated[Device | None, Depends(device_or_open)]


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413 before the route sees any of it
    (by its Content-Length, or while it streams in)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        import json

        payload = json.dumps(body("too_large", f"the request is larger than {self.limit // 2**20} MB", "body")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
    pass
