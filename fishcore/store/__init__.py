"""On disk: model folders and their cards (model_files.py), the workspace (workspace.py), My photos' managed
dataset area (my_photos.py), untrusted zips (archive.py), exports (export.py), species cards and samples."""
