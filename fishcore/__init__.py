"""fishcore: marine fish species classification by transfer learning on a residual network.

Every decision lives here (data, augmentation, models, training, evaluation, prediction, storage);
the Streamlit app and the CLI only read input, call these modules and render the results.
"""

__version__ = "0.1.0"
