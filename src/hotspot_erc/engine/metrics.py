"""Classification metrics for emotion recognition, from scikit-learn.

With ``C`` classes and the confusion matrix ``M`` (rows = true class, columns = predicted)::

    F1_c = 2 tp_c / (2 tp_c + fp_c + fn_c)               (0 when the denominator is 0)
    accuracy    = sum_c tp_c / N
    weighted_F1 = sum_c support_c F1_c / N               (support_c = sum_k M[c, k])
    macro_F1    = mean of F1_c over the classes that occur in y_true or in y_pred

Conventions (scikit-learn's own):

* ``per_class_f1`` is ``f1_score(average=None, labels=range(C), zero_division=0)``: a class
  absent from both vectors reports ``F1 = 0.0`` with support 0.
* ``macro_f1`` is ``f1_score(average="macro")`` over the union of ``y_true`` and ``y_pred``: a
  split that lacks a rare emotion is not penalised for a class it could not score; a class that
  is only predicted (never true) *is* counted, with F1 0.
* Every score is a fraction in [0, 1]; the reporting layer multiplies by 100 for display.

``summarise_runs`` gives the mean and the sample standard deviation (ddof = 1) over seeds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as sk


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts, rows = true class, columns = predicted class."""
    with warnings.catch_warnings():
        # With one class scikit-learn warns even though ``labels`` fixes the shape.
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        matrix = sk.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes))
    return matrix.astype(np.int64)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray,
                           label_names: Sequence[str]) -> dict:
    """Accuracy, weighted / macro / per-class F1, supports and confusion of class indices.

    ``y_true`` and ``y_pred`` are 1-D integer arrays of the same length with values in
    ``[0, len(label_names))``. Returns a JSON-ready dict of plain Python numbers.
    """
    num_classes = len(label_names)
    if num_classes == 0:
        raise ValueError("classification_metrics: label_names is empty, expected at least one "
                         "class name")
    y_true = _as_labels(y_true, "y_true", num_classes)
    y_pred = _as_labels(y_pred, "y_pred", num_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"classification_metrics: y_true has {y_true.size} labels but y_pred "
                         f"has {y_pred.size}; expected one prediction per true label")
    if y_true.size == 0:
        raise ValueError("classification_metrics: y_true and y_pred are empty; there is nothing "
                         "to score (no labelled, scored utterance in this split?)")

    labels = np.arange(num_classes)
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    support = confusion.sum(axis=1)  # (C,) how often each class is true
    f1 = sk.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "num_samples": int(y_true.size),
        "accuracy": float(sk.accuracy_score(y_true, y_pred)),
        "weighted_f1": float(sk.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                          zero_division=0)),
        "macro_f1": float(sk.f1_score(y_true, y_pred, labels=np.union1d(y_true, y_pred),
                                       average="macro", zero_division=0)),
        "per_class_f1": {name: float(f1[c]) for c, name in enumerate(label_names)},
        "per_class_support": {name: int(support[c]) for c, name in enumerate(label_names)},
        "confusion": confusion.tolist(),
    }


def summarise_runs(values: list[float]) -> dict:
    """Mean and sample std (ddof = 1) of one metric over runs; std is 0.0 for a single run."""
    if len(values) == 0:
        raise ValueError("summarise_runs: values is empty, expected the metric of at least one "
                         "run")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"summarise_runs: values must be finite numbers, got {list(values)}")
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(array.mean()), "std": std, "values": [float(v) for v in array]}


def _as_labels(labels: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"classification_metrics: {name} has shape {array.shape}, expected a "
                         "1-D vector of class indices")
    if array.size == 0:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"classification_metrics: {name} has dtype {array.dtype}, expected "
                         "integer class indices")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"classification_metrics: {name} holds class indices in [{low}, {high}], "
                         f"expected [0, {num_classes - 1}] for {num_classes} label names")
    return array.astype(np.int64)
