"""The field server's application: its routes, its limits, its errors as JSON; `serve` runs it on uvicorn."""

from __future__ import annotations

from fastapi import FastAPI

from fishcore.server import errors
from fishcore.server.config import ServerConfig
from fishcore.server.routes import fieldapp, health, model, predict, sync
from fishcore.server.security import BodyLimit
from fishcore.server.station import Station
from fishcore.settings import SERVER_PORT


def create_app(station: Station | None = None) -> FastAPI:
    station = station or Station(ServerConfig.from_env())
    app = FastAPI(
        title="fishcore field server",
        summary="The station's model and catch log over HTTP: for the field app on phones and any other client.",
        version="1",
    )
    app.state.station = station
    errors.install(app)
    for router in (health.router, model.router, predict.router, sync.router, fieldapp.router):  # the app's last
        app.include_router(router)
    app.add_middleware(BodyLimit, limit=station.config.max_body_mb * 2**20)
    return app


def serve(host: str = "127.0.0.1", port: int = SERVER_PORT, config: ServerConfig | None = None) -> None:
    """Run the server until interrupted (one process; predictions run in its thread pool)."""
    import uvicorn

    uvicorn.run(create_app(Station(config or ServerConfig.from_env())), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=5)  # fmt: skip
