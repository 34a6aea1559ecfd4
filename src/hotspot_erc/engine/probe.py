"""Context-free linear baseline: logistic regression on the utterances' global vectors.

For each scored utterance the input is the concatenation of the global vectors of the chosen
modalities (zeros plus a 0/1 "missing" flag per modality where one is absent), standardised with
training-split statistics. The inverse regularisation strength ``C`` is chosen on the validation
split from :data:`C_GRID` by the selection metric (weighted F1); the chosen model's test metrics
are reported. The test split is read only once, after selection.

This is the "logistic regression on the functionals" of the RAVDESS comparison and the
"context-free logistic regression on the sentence vectors" of the IEMOCAP reference: no dialogue
context, no local sequence, no hotspots.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hotspot_erc.data.dialogue import Dataset
from hotspot_erc.engine.metrics import classification_metrics

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def probe_inputs(dataset: Dataset, split: str, modalities: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(features (n, d), label indices (n,))`` of the scored, labelled utterances of ``split``."""
    dims = {m: dataset.feature_spec.modalities[m].global_dim for m in modalities}
    rows, labels = [], []
    for dialogue in dataset.split(split):
        for utterance in dialogue.utterances:
            if not utterance.scored or utterance.label is None:
                continue
            parts = []
            for m in modalities:
                present = utterance.has(m)
                vector = utterance.features[m].global_vector if present else np.zeros(dims[m])
                parts += [vector, [0.0 if present else 1.0]]
            rows.append(np.concatenate(parts))
            labels.append(dataset.label_index(utterance.label))
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def linear_probe(dataset: Dataset, modalities: Sequence[str] | None = None,
                 c_grid: Sequence[float] = C_GRID, seed: int = 0) -> dict:
    """Fit on train, choose ``C`` on valid, report valid and test metrics of the chosen model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    modalities = list(modalities or dataset.feature_spec.modalities)
    unknown = [m for m in modalities if m not in dataset.feature_spec.modalities]
    if unknown:
        raise ValueError(f"dataset {dataset.name} has no features for {unknown}; it has "
                         f"{list(dataset.feature_spec.modalities)}")
    x_train, y_train = probe_inputs(dataset, "train", modalities)
    x_valid, y_valid = probe_inputs(dataset, "valid", modalities)
    scaler = StandardScaler().fit(x_train)
    best = None
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        model.fit(scaler.transform(x_train), y_train)
        valid = classification_metrics(y_valid, model.predict(scaler.transform(x_valid)),
                                       dataset.label_names)
        if best is None or valid["weighted_f1"] > best[1]["weighted_f1"]:
            best = (c, valid, model)
    c, valid, model = best
    x_test, y_test = probe_inputs(dataset, "test", modalities)
    test = classification_metrics(y_test, model.predict(scaler.transform(x_test)),
                                  dataset.label_names)
    return {"model": "logistic regression on global vectors", "modalities": modalities,
            "C": c, "valid": valid, "test": test}
