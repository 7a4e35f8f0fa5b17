"""Every refusal as JSON that names the field and the reason: {"error": code, "field": where, "reason": why}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fishcore.errors import FishcoreError, ImageError
from fishcore.store.catchlog.engine import unreachable


class ApiError(Exception):
    """A refusal: HTTP status, a code, the field (when one is to blame) and the reason in words."""

    def __init__(self, status: int, code: str, reason: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason, self.field, self.headers = status, code, reason, field, headers or {}


class Detail(BaseModel):
    field: str
    reason: str


class ErrorOut(BaseModel):
    """Every refusal: what kind, the field to blame (when one is), the reason in words."""

    error: str = Field(description="unauthorized, invalid, bad_photo, too_large, too_many_requests, catch_log_away, ...")
    field: str | None = Field(description="e.g. entries[3].weight_kg")
    reason: str
    details: list[Detail] | None = Field(None, description="with 422: every value refused, not only the first")


_HEADER = {"schema": {"type": "string"}}
REFUSALS = {
    401: {"description": "no token, or one that is not valid here (unknown or revoked)",
          "headers": {"WWW-Authenticate": {**_HEADER, "description": "Bearer"}}},
    413: {"description": "the request body is larger than the server takes (with or without a Content-Length)"},
    422: {"description": "a value is refused: `field` names it, `reason` says why; nothing was written"},
    429: {"description": "too many requests from this device, or too many refused tokens from this address",
          "headers": {"Retry-After": {**_HEADER, "description": "seconds to wait"}}},
    503: {"description": "the station's catch log database cannot be reached: nothing was written, send again later",
          "headers": {"Retry-After": {**_HEADER, "description": "seconds to wait"}}},
}  # fmt: skip


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (its `responses=`), each with the one JSON body they all have."""
    return {code: {"model": ErrorOut, **REFUSALS[code]} for code in codes}


def body(code: str, reason: str, field: str | None = None, **extra: Any) -> dict:
    return {"error": code, "field": field, "reason": reason, **extra}


def _where(loc: tuple | list) -> str:
    """('body', 'entries', 3, 'weight_kg') -> 'entries[3].weight_kg'."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path", "header", "form"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def install(app: FastAPI) -> None:
    """The handlers that turn every error into the one JSON form."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.code, exc.reason, exc.field), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "the request is malformed"}
        reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            reason = "the body is not valid JSON"
        details = [
            {"field": _where(e.get("loc", ())), "reason": str(e.get("msg", "")).removeprefix("Value error, ")} for e in errors
        ]
        return JSONResponse(body("invalid", reason, _where(first.get("loc", ())), details=details[:20]), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # the framework could not read the body (not JSON, not UTF-8, a broken form)
            return JSONResponse(body("invalid", "the body cannot be read: send JSON (or the form) as documented", "body"),
                                status_code=422)  # fmt: skip
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "error")
        return JSONResponse(body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def database(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if unreachable(exc):
            reason = "the station's catch log database cannot be reached: nothing was written, send again later"
            return JSONResponse(body("catch_log_away", reason), status_code=503, headers={"Retry-After": "30"})
        raise exc

    @app.exception_handler(ImageError)
    async def bad_photo(request: Request, exc: ImageError) -> JSONResponse:
        return JSONResponse(body("bad_photo", str(exc), "photo"), status_code=422)

    @app.exception_handler(FishcoreError)
    async def refused(request: Request, exc: FishcoreError) -> JSONResponse:
        field = exc.params.get("what") if isinstance(getattr(exc, "params", None), dict) else None
        return JSONResponse(body(getattr(exc, "code", "refused"), str(exc), field), status_code=422)
