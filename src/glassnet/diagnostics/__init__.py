"""See through training: per-layer statistics, detectors and plain-words advice.

Two entry points:

- `Monitor(every=50)`: a callback for `fit`. Every `every` steps it records the statistics
  of that training step and runs the detectors; other steps cost one NaN check of the
  loss. Without a Monitor no diagnostics code runs at all.
- `model.diagnose(x, y=None)` (= `diagnose(model, x, y)`): a one-shot check on one batch
  that leaves the model unchanged.

Both return their findings in a `Report` (`monitor.report`, the return value of
`diagnose`): `print(report)` shows a table per layer and the findings with advice,
`report.to_dict()` is JSON-safe. Errors and warnings are also emitted once each through
Python's `warnings` as `DiagnosticWarning` (a UserWarning).

Record format (`monitor.records`, `report.records`): one plain dict per sampled step,
JSON-safe apart from NaN/inf floats (`jsonable(records)` converts those)::

    {"step": int,            # training step counted by the Monitor over all epochs and
                             # fits (None for diagnose)
     "epoch": int, "batch": int,  # where the step was (None for diagnose)
     "loss": float | None,   # the running loss of the epoch that fit logs
     "layers": {layer_name: {          # leaf layers, in the order they were called
         "type": "Dense", "activation": "relu" | "sigmoid" | ... | None,
         "act_mean": float, "act_std": float,   # over the finite output values
         "hist": ([counts], [edges]) | None,    # np.histogram of the outputs; range (0, 1)
                                                # for sigmoid, (-1, 1) for tanh
         "saturated": float | None,  # sigmoid/tanh: share of outputs within 0.02 of a
                                     # bound (y < 0.02 or y > 0.98; |y| > 0.98 for tanh)
         "dead": float | None,       # relu/relu6: share of units that output 0 for every
                                     # sample of the batch
         "pre_mean": float | None, "pre_std": float | None,  # pre-activation z = x W + b
         "nonfinite": bool,          # the output holds NaN or inf
         "bn": None | {"mean_gap", "var_ratio", "num_updates", "values_per_channel",
                       "training"},  # BatchNormalization: batch vs moving statistics
         "grad_norm": {weight_name: float | None},     # ||g|| before the update
         "update_ratio": {weight_name: float | None},  # ||dw|| / ||w|| of the step
     }}}

`diagnose` records also carry "batch_size" and "train_inference_gap" (relative difference
of the outputs in training and inference mode, when BN or Dropout is present).

Example:
    >>> from glassnet.diagnostics import Monitor
    >>> monitor = Monitor(every=20)
    >>> model.fit(x, y, epochs=5, callbacks=[monitor])
    >>> print(monitor.report)
    >>> stds = [r["layers"]["dense_1"]["act_std"] for r in monitor.records]
"""
from .activations import SATURATION_MARGIN, Capture, activation_stats, leaf_layers
from .detectors import ADVICE, THRESHOLDS
from .diagnose import diagnose
from .monitor import Monitor
from .report import DiagnosticWarning, Finding, Report, jsonable

__all__ = ["Monitor", "diagnose", "Report", "Finding", "DiagnosticWarning", "THRESHOLDS",
           "ADVICE", "SATURATION_MARGIN", "jsonable", "Capture", "activation_stats",
           "leaf_layers"]
