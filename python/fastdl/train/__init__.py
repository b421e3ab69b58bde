"""fastdl.train: a small fit loop with a progress bar, validation metrics, callbacks (early
stopping, checkpointing), a History, and an optional loss/metric plot."""
from fastdl.train.fit import (  # noqa: F401
    Callback, EarlyStopping, History, ModelCheckpoint, accuracy, evaluate, fit, plot_history,
)
