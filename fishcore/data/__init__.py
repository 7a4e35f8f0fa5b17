"""Photos in: scanning, loading and splitting dataset folders (scan.py) and the paper's augmentation (augment.py)."""
