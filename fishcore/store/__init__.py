"""On disk: saved model folders and their cards (model_files.py) and the workspace's folders (workspace.py)."""
