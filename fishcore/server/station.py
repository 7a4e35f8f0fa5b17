"""What a station serves: the workspace's active model (reloaded when another is made active or retrained), its
model package for clients, and its catch log with the devices it lets in."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fishcore.errors import ModelFileError
from fishcore.server.config import ServerConfig
from fishcore.server.security import RateLimit
from fishcore.store.catchlog import CatchLog
from fishcore.store.catchlog.devices import Device, Devices
from fishcore.store.model_files import CARD_FILE, model_checksum
from fishcore.store.workspace import Workspace

if TYPE_CHECKING:  # torch is imported at the first prediction or package build: syncing phones needs none
    from fishcore.inference.package import Package
    from fishcore.inference.predict import Predictor

RECENT = 600.0  # seconds a verified token stays good while the database is away


class Station:
    """One workspace's model and catch log, shared by every request (the predictor is thread-safe)."""

    def __init__(self, config: ServerConfig | None = None, log: CatchLog | None = None, workspace: Workspace | None = None):
        self.config = config or ServerConfig()
        self.workspace = workspace or Workspace.from_env()
        self.log = log or CatchLog()
        self.devices = Devices(self.log)
        self.rate = RateLimit(self.config.per_minute, self.config.burst)
        self.failures = RateLimit(self.config.failures_per_minute, self.config.failures_burst)  # per client address
        self.open_model = self.config.open_model
        self._lock = threading.Lock()
        self._loaded: tuple[tuple, Predictor] | None = None
        self._known: tuple[tuple, set[str]] | None = None
        self._package: tuple[tuple, Package] | None = None
        self._recent: dict[str, tuple[Device, float]] = {}  # token hash -> (device, when verified)
        self._holding: set[tuple[str, str]] = set()
        self._decoding = threading.BoundedSemaphore(self.config.decoders)

    def decoding(self):
        """Hold one of the few decoding slots while a photo is decoded (a context manager; blocks its thread only)."""
        return self._decoding

    async def off_loop(self, work, *args):
        """``work(*args)`` in a worker thread within a decoding slot: the event loop never waits for it."""
        import anyio

        def guarded():
            with self._decoding:
                return work(*args)

        return await anyio.to_thread.run_sync(guarded)  # (device id, model checksum) written to the devices table

    def verify(self, token: str | None) -> Device | None:
        """The device of a token. While the database is away, a token verified in the last RECENT seconds still
        counts (so a prediction can be answered, and recorded in the spool); any other is refused as "away" (503)."""
        from fishcore.store.catchlog.devices import token_hash
        from fishcore.store.catchlog.engine import unreachable

        digest = token_hash(token) if token else ""
        try:
            found = self.devices.verify(token)
        except Exception as exc:
            seen = self._recent.get(digest)
            if unreachable(exc) and seen is not None and time.monotonic() - seen[1] < RECENT:
                return seen[0]
            raise
        with self._lock:
            if found is None:
                self._recent.pop(digest, None)
            else:
                self._recent[digest] = (found, time.monotonic())
        return found

    def took_model(self, device: Device, checksum: str) -> None:
        """Note which model version a device holds; written only when it changes (at most once per version)."""
        from fishcore.store.catchlog.engine import unreachable

        key = (device.id, checksum)
        with self._lock:
            if key in self._holding:
                return
        try:
            self.devices.took_model(device.id, checksum)
        except Exception as exc:
            if not unreachable(exc):
                raise
            return  # the database is away: noted at a later download
        with self._lock:
            self._holding = {k for k in self._holding if k[0] != device.id} | {key}

    def model_dir(self) -> Path:
        found = self.workspace.active_model()
        if found is None:
            raise ModelFileError("this station has no model yet: train one, or keep the bundled model")
        return found

    def _stamp(self, folder: Path) -> tuple:
        return (str(folder.resolve()), (folder / CARD_FILE).stat().st_mtime_ns)

    def predictor(self) -> tuple[Path, Predictor]:
        """The active model's predictor, loaded once per model version."""
        from fishcore.inference.predict import Predictor

        folder = self.model_dir()
        stamp = self._stamp(folder)
        with self._lock:
            if self._loaded is None or self._loaded[0] != stamp:
                self._loaded = (stamp, Predictor.load(folder, engine="auto"))
            return folder, self._loaded[1]

    def package(self) -> Package:
        """The active model's download, read (or built) once per model version and then kept in memory: a phone
        asks at every sync whether it is still current."""
        from fishcore.inference.package import cached_package

        folder = self.model_dir()
        stamp = self._stamp(folder)
        with self._lock:
            if self._package is None or self._package[0] != stamp:
                self._package = (stamp, cached_package(folder, self.workspace.cache))
            return self._package[1]

    def known_models(self) -> set[str]:
        """The checksums of every model version this station has: what an entry from a device may name."""
        folders = self.workspace.model_dirs()
        stamp = tuple(self._stamp(f) for f in folders)
        with self._lock:
            if self._known is None or self._known[0] != stamp:
                self._known = (stamp, {model_checksum(f) for f in folders})
            return self._known[1]
