"""Training: the loop (loop.py), cached frozen-trunk features (features.py), the folder-to-model pipeline
(pipeline.py) and background jobs (jobs.py)."""
