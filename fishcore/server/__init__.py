"""The field server: the station's model and catch log over HTTP, for the field app on phones and any other client.

A thin entry point over fishcore, like the pages and the CLI (FastAPI on uvicorn): app.py builds the
application, station.py holds what it serves (the workspace's active model and its catch log), security.py
the device tokens and the limits, errors.py the JSON errors, schemas.py the typed requests and responses,
routes/ one module per area (model, predict, sync, health). `fishcore serve` runs it.
"""
