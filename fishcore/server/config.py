"""The field server's settings (ServerConfig), apart from the server itself, so the command line reads them without
importing the server."""

from __future__ import annotations

from dataclasses import dataclass

from fishcore.config import Rule, check_settings, setting, settings_of
from fishcore.settings import server_limits


@dataclass(frozen=True)
class ServerConfig:
    """The server's settings, each with its Rule (help, kind, limits): `fishcore serve`'s flags are made from them
    (fishcore/cli/serve.py), the values are checked against them, and three can also come from the environment
    (ENV_SETTINGS, fishcore.settings.server_limits)."""

    per_minute: float = setting(600.0, Rule("requests per device per minute, on average", float, 1, 1_000_000))
    burst: int = setting(120, Rule("requests one device may send at once", int, 1, 100_000))
    max_body_mb: int = setting(32, Rule("the largest request in MB, sent with a length or in chunks", int, 1, 1024))
    max_photos: int = setting(8, Rule("photos in one prediction request", int, 1, 64))
    max_pixels: int = setting(50_000_000, Rule(
        "the most pixels a photo may have, read from its header before anything is decoded (a 48-megapixel phone "
        "camera's photo fits)", int, 100_000, 200_000_000))  # fmt: skip
    decoders: int = setting(2, Rule("photos decoded at once, sync uploads and predictions together", int, 1, 64))
    open_model: bool = setting(False, Rule("let anyone download the active model (no token needed for it)", bool))
    failures_per_minute: float = setting(30.0, Rule("refused tokens per client address per minute, on average", float,
                                                    1, 100_000))  # fmt: skip
    failures_burst: int = setting(60, Rule("refused tokens one client address may send at once (phones behind one "
                                           "network address share it)", int, 1, 100_000))  # fmt: skip
    # whose X-Forwarded-For names the client (a list: its flag, --trusted-proxy, is given once per address)
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")

    def __post_init__(self) -> None:
        check_settings(self)

    @classmethod
    def from_env(cls, **overrides) -> ServerConfig:
        """The defaults, then the environment's FISHCORE_SERVER_* (fishcore.settings), then ``overrides`` (the flags)."""
        values = {**server_limits(ENV_SETTINGS), **{k: v for k, v in overrides.items() if v is not None}}
        for name, s in settings_of(cls).items():
            if name in values and s.rule.kind is int and isinstance(values[name], float) and values[name].is_integer():
                values[name] = int(values[name])  # "120" from the environment
        return cls(**values)


# The settings the environment may also give, as FISHCORE_SERVER_<NAME> (listed in fishcore.settings.ENVIRONMENT).
ENV_SETTINGS = ("per_minute", "burst", "max_body_mb")
SERVER_SETTINGS = settings_of(ServerConfig)
