"""fishcore: marine fish species classification by transfer learning on a residual network.

Every decision lives here, grouped by concern: ``data`` (scan, split, augmentation), ``models``
(backbones and their weights, the residual head, freezing), ``training`` (the loop, cached features,
the instant/fast/full strategies, the folder-to-model pipeline, background jobs), ``inference``
(engine, calibration, prediction, evaluation) and ``store`` (model folders and cards, the workspace).
``config``, ``settings``, ``events`` and ``errors`` are the small shared vocabulary. The Streamlit app
and the CLI only read input, call these modules and word the codes they report; fishcore never
imports streamlit.
"""

__version__ = "0.3.0"
