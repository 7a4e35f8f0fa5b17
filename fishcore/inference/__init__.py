"""Using a trained model: the inference engine (engine.py), prediction (predict.py) and evaluation (evaluate.py)."""
