"""Is the station up: its model and its catch log (open: it says nothing of what the log holds)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from fishcore.server.schemas import HealthOut
from fishcore.store.catchlog.engine import unreachable

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", response_model=HealthOut, summary="the station's model and catch log")
def health(request: Request) -> HealthOut:
    station = request.app.state.station
    try:
        model = station.model_dir().name
    except Exception:
        model = None
    try:
        with station.log.database().connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        log_state = "ok"
        station.log.flush_spool()  # answers kept while it was away go to it now
    except Exception as exc:
        if not unreachable(exc):
            raise
        log_state = "away"
    waiting = station.log.pending()
    ok = model is not None and log_state == "ok"
    return HealthOut(status="ok" if ok else "degraded", model=model, catch_log=log_state, waiting=waiting)
