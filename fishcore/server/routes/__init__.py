"""The field server's routes, one module per area: model.py, predict.py, sync.py, health.py."""
