"""Networks: the backbone registry with its ImageNet weights (backbones.py) and the residual head and freezing (net.py)."""
