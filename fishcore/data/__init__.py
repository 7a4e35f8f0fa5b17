"""Photos in: dataset scanning and splitting (dataset.py) and the paper's augmentation (augment.py)."""
