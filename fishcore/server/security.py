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

    def waiting(self, key: str) -> float:
        """0 when ``key`` has a request left, else the seconds until it has one; takes nothing."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        return 0.0 if tokens >= 1.0 else ((1.0 - tokens) / self.rate if self.rate > 0 else 60.0)


def client_address(request: Request) -> str:
    """Who is asking: the peer's address, or, when the peer is a trusted reverse proxy (ServerConfig.trusted_proxies,
    loopback by default, where docs/field-server.md puts Caddy or nginx), the last address it forwarded."""
    peer = request.client.host if request.client else ""
    trusted = request.app.state.station.config.trusted_proxies
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in trusted:
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]  # the address the proxy itself saw; what the client wrote before it is not trusted
    return peer


def _too_many(reason: str, wait: float) -> ApiError:
    return ApiError(429, "too_many_requests", f"{reason}: try again in {wait:.0f} s",
                    headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip


def device(request: Request, credentials: Credentials) -> Device:
    """The device sending the request; 401 without a valid token, 429 when it sends too many."""
    station = request.app.state.station
    address = client_address(request)
    wait = station.failures.waiting(address)
    if wait > 0:  # this address has guessed too often: not even its token is looked at until it has waited
        raise _too_many("too many refused tokens from this address", wait)
    found = station.verify(credentials.credentials if credentials else None)
    if found is None:
        station.failures.take(address)
        reason = "no token: send the device's token as 'Authorization: Bearer TOKEN'" if credentials is None else (
            "this token is not valid here (unknown or revoked)"
        )
        raise ApiError(401, "unauthorized", reason, "Authorization", {"WWW-Authenticate": "Bearer"})
    wait = station.rate.take(found.id)
    if wait > 0:
        raise _too_many(f"too many requests from {found.name}", wait)
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
        if length is not None and length.isdigit():
            if int(length) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)  # the server reads no more than the length says
            return
        # No length (chunked): read the body here, up to the limit, before the route sees any of it; 413 beyond.
        # (Refusing from inside the route's read would come back as the framework's 400 for an unreadable body.)
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: a disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        import json

        payload = json.dumps(body("too_large", f"the request is larger than {self.limit // 2**20} MB", "body")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

