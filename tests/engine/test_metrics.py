from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from hotspot_erc.engine.metrics import classification_metrics, confusion_matrix, summarise_runs

NAMES = ["neutral", "happy", "sad", "angry", "excited"]


def test_hand_example():
    # true: n n h h s ; predicted: n h h h n ; "angry" and "excited" occur nowhere.
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    result = classification_metrics(y_true, y_pred, NAMES)
    assert result["num_samples"] == 5
    assert result["accuracy"] == pytest.approx(3 / 5)
    # neutral: tp 1, fp 1, fn 1 -> 1/2; happy: tp 2, fp 1, fn 0 -> 4/5; sad: tp 0 -> 0.
    assert result["per_class_f1"] == pytest.approx(
        {"neutral": 0.5, "happy": 0.8, "sad": 0.0, "angry": 0.0, "excited": 0.0})
    assert result["per_class_support"] == {"neutral": 2, "happy": 2, "sad": 1, "angry": 0,
                                           "excited": 0}
    assert result["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 1 * 0.0) / 5)
    # Macro over the three occurring classes only.
    assert result["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert result["confusion"] == [[1, 1, 0, 0, 0], [0, 2, 0, 0, 0], [1, 0, 0, 0, 0],
                                   [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    json.dumps(result)


def test_class_only_predicted_counts_in_macro():
    result = classification_metrics(np.array([0, 0]), np.array([0, 3]), NAMES)
    # neutral: tp 1, fn 1 -> 2/3; angry predicted but never true -> 0, still in the macro mean.
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 6).flatmap(lambda c: st.tuples(
    st.just(c),
    st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1,
             max_size=40))))
def test_matches_scikit_learn(case):
    num_classes, pairs = case
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    names = [f"class{c}" for c in range(num_classes)]
    result = classification_metrics(y_true, y_pred, names)
    labels = list(range(num_classes))
    occurring = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert result["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
        assert result["weighted_f1"] == pytest.approx(
            sk.f1_score(y_true, y_pred, average="weighted", labels=labels, zero_division=0))
        assert result["macro_f1"] == pytest.approx(
            sk.f1_score(y_true, y_pred, average="macro", labels=occurring, zero_division=0))
        # The documented equivalence with scikit-learn's default labels (union of both vectors).
        assert result["macro_f1"] == pytest.approx(
            sk.f1_score(y_true, y_pred, average="macro", zero_division=0))
        per_class = sk.f1_score(y_true, y_pred, average=None, labels=labels, zero_division=0)
        confusion = sk.confusion_matrix(y_true, y_pred, labels=labels)
    assert [result["per_class_f1"][n] for n in names] == pytest.approx(per_class.tolist())
    assert result["confusion"] == confusion.tolist()
    assert [result["per_class_support"][n] for n in names] == np.bincount(
        y_true, minlength=num_classes).tolist()


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([2, 2, 0]), np.array([1, 2, 0]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]


def test_empty_input_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        classification_metrics(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), NAMES)


@pytest.mark.parametrize("y_true, y_pred, field", [
    (np.array([0, 1]), np.array([0]), "y_pred"),
    (np.array([0, 5]), np.array([0, 1]), "y_true"),
    (np.array([0, 1]), np.array([-1, 1]), "y_pred"),
    (np.array([0.0, 1.0]), np.array([0, 1]), "y_true"),
    (np.array([[0, 1]]), np.array([0, 1]), "y_true"),
])
def test_bad_input_names_the_field(y_true, y_pred, field):
    with pytest.raises(ValueError, match=field):
        classification_metrics(y_true, y_pred, NAMES)


def test_summarise_runs_sample_std():
    summary = summarise_runs([70.0, 72.0, 74.0])
    assert summary["mean"] == pytest.approx(72.0)
    assert summary["std"] == pytest.approx(2.0)  # ddof = 1: sqrt((4 + 0 + 4) / 2)
    assert summary["values"] == [70.0, 72.0, 74.0]


def test_summarise_one_run_has_zero_std():
    assert summarise_runs([0.5]) == {"mean": 0.5, "std": 0.0, "values": [0.5]}


@pytest.mark.parametrize("values", [[], [1.0, float("nan")]])
def test_summarise_runs_rejects_bad_values(values):
    with pytest.raises(ValueError, match="values"):
        summarise_runs(values)
