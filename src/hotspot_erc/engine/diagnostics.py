"""What the model's explanations say over a whole split: HGF gates, hotspot localisation, routing.

:class:`DiagnosticsAccumulator` is fed ``(batch, output)`` pairs during evaluation and reduces the
explanations of :class:`~hotspot_erc.model.model.ModelOutput` to a JSON-ready dict. Only valid
entries are counted: a position ``(b, u, l)`` of modality ``m`` is valid when
``utterance_mask[b, u] & present[b, u] & local_mask[b, u, l]`` (the explanation's own masks), and
an utterance is valid for a modality pair when ``utterance_mask[b, u] & valid[b, u]`` of its
routing. Values under False masks never change the result.

Per modality (over valid positions)

* HGF gate ``alpha`` (mean over channels): mean, population standard deviation, the fraction
  ``< 0.1`` ("near 0": the hotspot path is shut) and ``> 0.9`` ("near 1": only the hotspot path),
  and a histogram of 10 equal bins over [0, 1]. Kept as running moments (Chan et al.'s pairwise
  update) and bin counts, so memory does not grow with the split.
* Mean hotspot weight.
* Where ground truth exists (synthetic data): the localisation AUROC of ``hotspot_weights``
  against ``hotspot_truth``, pooled over the valid positions of the utterances that have truth and
  at least one true position, the mean of the per-utterance AUROCs (utterances with both true and
  false positions), and the same two numbers for the rule-based ``prior`` on the utterances that
  have one, next to the learned weights' AUROC on exactly those utterances. Only these positions
  are stored, as arrays.

The AUROC (scikit-learn's ``roc_auc_score``) is the Mann-Whitney statistic with average ranks
for ties::

    AUROC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)

where ``R_pos`` is the sum of the (1-based, tie-averaged) ranks of the positive scores: the
probability that a random true position outscores a random false one, ties counting one half.

Per ordered modality pair (source, target) of the Mixture-of-Aligners, over valid utterances

* ``usage[e]``: the fraction of TopK routing slots given to expert ``e``;
* ``mean_probability[e]``: the mean router probability ``p_e``;
* ``entropy``: the mean of ``H = -sum_e p_e log p_e`` in nats, beside its maximum ``log E``;
* the same usage and entropy per emotion class, by true label (unscored utterances are skipped);
* ``collapsed``: one expert takes more than 80% of the slots, or fewer than
  ``max(2, min(K + 1, E))`` experts get at least 5% of them. For TopK ``K = 1`` the second rule
  reads "fewer than 2 experts get >= 5%"; for ``K >= 2`` it asks for more experts than one
  utterance selects, since a router that always picks the same K experts no longer routes.
  With a single expert there is nothing to route and ``collapsed`` is ``null``.

Every number that cannot be computed is ``null`` (``None``) and the reason is a line in ``notes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from hotspot_erc.data.batch import IGNORE_INDEX, Batch, ModalityBatch
from hotspot_erc.model.model import ModalityExplanation, ModelOutput, RoutingExplanation

GATE_BINS = 10
NEAR_ZERO = 0.1
NEAR_ONE = 0.9
COLLAPSE_MAX_SHARE = 0.8  # one expert above this share of the slots is a collapse
ACTIVE_SHARE = 0.05  # an expert with at least this share of the slots counts as in use


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (scikit-learn's, ties
    averaged), after checks that name what is wrong."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=bool).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(f"auroc: {scores.size} scores but {labels.size} labels, expected one "
                         "label per score")
    if not np.all(np.isfinite(scores)):
        raise ValueError("auroc: scores contain NaN or infinity, expected finite numbers")
    num_positive = int(labels.sum())
    num_negative = int(labels.size - num_positive)
    if num_positive == 0 or num_negative == 0:
        raise ValueError(f"auroc: needs both classes, got {num_positive} positive and "
                         f"{num_negative} negative labels")
    return float(roc_auc_score(labels, scores))


@dataclass
class _GateStatistics:
    """Running moments and histogram of the gate, and the hotspot-weight sum, of one modality."""

    count: int = 0
    mean: float = 0.0
    squared_deviations: float = 0.0  # sum of (gate - mean)^2
    near_zero: int = 0
    near_one: int = 0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(GATE_BINS, dtype=np.int64))
    weight_sum: float = 0.0

    def add(self, gate: np.ndarray, weights: np.ndarray) -> None:
        added = int(gate.size)
        if added == 0:
            return
        added_mean = float(gate.mean())
        added_deviations = float(((gate - added_mean) ** 2).sum())
        total = self.count + added
        delta = added_mean - self.mean
        # Chan et al.'s merge of two (count, mean, M2) summaries: stable across many batches.
        self.squared_deviations += added_deviations + delta * delta * self.count * added / total
        self.mean += delta * added / total
        self.count = total
        self.near_zero += int((gate < NEAR_ZERO).sum())
        self.near_one += int((gate > NEAR_ONE).sum())
        # Clipped so that a value of exactly 1.0 (or rounding just outside) lands in an end bin.
        self.histogram += np.histogram(np.clip(gate, 0.0, 1.0), bins=GATE_BINS,
                                       range=(0.0, 1.0))[0]
        self.weight_sum += float(weights.sum())


@dataclass
class _Localisation:
    """Stored positions of the utterances with a true hotspot, for one modality."""

    utterances_with_truth: int = 0
    utterances_with_hotspot: int = 0
    weights: list[np.ndarray] = field(default_factory=list)
    prior: list[np.ndarray] = field(default_factory=list)
    truth: list[np.ndarray] = field(default_factory=list)
    has_prior: list[np.ndarray] = field(default_factory=list)  # per stored position
    utterance_auroc: list[float] = field(default_factory=list)
    # Per-utterance prior AUROC, NaN where the utterance has no prior; aligned with the above.
    utterance_prior_auroc: list[float] = field(default_factory=list)


@dataclass
class _Routing:
    """Slot counts, probability and entropy sums of one ordered modality pair."""

    num_experts: int
    top_k: int
    num_classes: int
    utterances: int = 0
    slots: np.ndarray = field(init=False)  # (E,) routing slots per expert
    probability_sum: np.ndarray = field(init=False)  # (E,)
    entropy_sum: float = 0.0
    class_utterances: np.ndarray = field(init=False)  # (C,)
    class_slots: np.ndarray = field(init=False)  # (C, E)
    class_entropy_sum: np.ndarray = field(init=False)  # (C,)

    def __post_init__(self) -> None:
        self.slots = np.zeros(self.num_experts, dtype=np.int64)
        self.probability_sum = np.zeros(self.num_experts)
        self.class_utterances = np.zeros(self.num_classes, dtype=np.int64)
        self.class_slots = np.zeros((self.num_classes, self.num_experts), dtype=np.int64)
        self.class_entropy_sum = np.zeros(self.num_classes)


class DiagnosticsAccumulator:
    """Accumulate gate, localisation and routing statistics over batches; see the module doc.

    Args:
        modalities (Sequence[str]): the model's modalities, in the order to report them.
        label_names (Sequence[str]): class names, indexed like ``Batch.labels``.
    """

    def __init__(self, modalities: Sequence[str], label_names: Sequence[str]):
        self.modalities = list(modalities)
        self.label_names = list(label_names)
        self._gates = {m: _GateStatistics() for m in self.modalities}
        self._localisation = {m: _Localisation() for m in self.modalities}
        self._routing: dict[tuple[str, str], _Routing] = {}

    def update(self, batch: Batch, output: ModelOutput) -> None:
        """Add one batch; tensors are detached and copied to the CPU."""
        utterance_mask = batch.utterance_mask.detach().cpu().bool()  # (B, U)
        for m in self.modalities:
            explanation = output.hotspots.get(m)
            if explanation is None:
                continue
            valid = (explanation.local_mask.detach().cpu().bool()
                     & explanation.present.detach().cpu().bool()[..., None]
                     & utterance_mask[..., None])  # (B, U, L)
            gate = explanation.gate.detach().cpu().double()
            weights = explanation.hotspot_weights.detach().cpu().double()
            self._gates[m].add(gate[valid].numpy(), weights[valid].numpy())
            if m in batch.modalities:
                self._add_localisation(m, explanation, batch.modalities[m], weights, valid)
        labels = batch.labels.detach().cpu()
        for pair, routing in output.routing.items():
            self._add_routing(pair, routing, utterance_mask, labels)

    def _add_localisation(self, m: str, explanation: ModalityExplanation, data: ModalityBatch,
                          weights: torch.Tensor, valid: torch.Tensor) -> None:
        if data.hotspot_truth.shape != weights.shape:
            raise ValueError(
                f"DiagnosticsAccumulator.update: modality {m}: batch hotspot_truth has shape "
                f"{tuple(data.hotspot_truth.shape)} but the model's hotspot_weights "
                f"{tuple(explanation.hotspot_weights.shape)}, expected the same (B, U, L)")
        record = self._localisation[m]
        truth = data.hotspot_truth.detach().cpu().bool() & valid  # (B, U, L)
        with_truth = data.has_truth.detach().cpu().bool() & valid.any(dim=-1)  # (B, U)
        record.utterances_with_truth += int(with_truth.sum())
        scored = with_truth & truth.any(dim=-1)  # (B, U) truth with at least one true position
        if not bool(scored.any()):
            return
        record.utterances_with_hotspot += int(scored.sum())
        positions = valid[scored].numpy()  # (N, L)
        utterance_weights = weights[scored].numpy()
        utterance_prior = data.prior.detach().cpu().double()[scored].numpy()
        utterance_truth = truth[scored].numpy()
        has_prior = data.has_prior.detach().cpu().bool()[scored].numpy()  # (N,)
        record.weights.append(utterance_weights[positions])
        record.prior.append(utterance_prior[positions])
        record.truth.append(utterance_truth[positions])
        record.has_prior.append(np.broadcast_to(has_prior[:, None], positions.shape)[positions])
        for n in range(positions.shape[0]):
            labels = utterance_truth[n, positions[n]]
            if labels.all():
                continue  # every position is a hotspot: no ranking to judge in this utterance
            record.utterance_auroc.append(auroc(utterance_weights[n, positions[n]], labels))
            record.utterance_prior_auroc.append(
                auroc(utterance_prior[n, positions[n]], labels) if has_prior[n] else math.nan)

    def _add_routing(self, pair: tuple[str, str], routing: RoutingExplanation,
                     utterance_mask: torch.Tensor, labels: torch.Tensor) -> None:
        valid = routing.valid.detach().cpu().bool() & utterance_mask  # (B, U)
        probs = routing.probs.detach().cpu().double()[valid]  # (N, E)
        selected = routing.selected.detach().cpu().long()[valid]  # (N, K), -1 = no selection
        num_experts, top_k = int(routing.probs.shape[-1]), int(routing.selected.shape[-1])
        record = self._routing.get(pair)
        if record is None:
            record = self._routing[pair] = _Routing(num_experts, top_k, len(self.label_names))
        elif (record.num_experts, record.top_k) != (num_experts, top_k):
            raise ValueError(
                f"DiagnosticsAccumulator.update: routing {pair[0]}->{pair[1]} has "
                f"{num_experts} experts and TopK {top_k}, expected {record.num_experts} and "
                f"{record.top_k} as in earlier batches")
        if selected.numel() and int(selected.max()) >= num_experts:
            raise ValueError(
                f"DiagnosticsAccumulator.update: routing {pair[0]}->{pair[1]} selected expert "
                f"{int(selected.max())}, expected indices below {num_experts} (or -1)")
        chosen = selected >= 0
        # (N, E): how many of an utterance's TopK slots went to each expert.
        slots = (torch.nn.functional.one_hot(selected.clamp(min=0), num_experts)
                 * chosen[..., None]).sum(dim=1).numpy()
        entropy = torch.special.entr(probs).sum(dim=-1).numpy()  # (N,) -p log p, 0 at p = 0
        record.utterances += int(probs.shape[0])
        record.slots += slots.sum(axis=0)
        record.probability_sum += probs.sum(dim=0).numpy()
        record.entropy_sum += float(entropy.sum())

        utterance_labels = labels[valid].numpy()  # (N,)
        scored = utterance_labels != IGNORE_INDEX
        classes = utterance_labels[scored]
        if classes.size and (classes.min() < 0 or classes.max() >= len(self.label_names)):
            raise ValueError(
                f"DiagnosticsAccumulator.update: batch labels hold class {int(classes.max())} "
                f"(or {int(classes.min())}), expected [0, {len(self.label_names) - 1}] or "
                f"IGNORE_INDEX for {len(self.label_names)} label names")
        record.class_utterances += np.bincount(classes, minlength=len(self.label_names))
        np.add.at(record.class_slots, classes, slots[scored])
        np.add.at(record.class_entropy_sum, classes, entropy[scored])

    def result(self) -> dict:
        """The JSON-ready summary: plain floats, ints, lists, ``None`` and a ``notes`` list."""
        notes: list[str] = []
        modalities = {m: self._modality_result(m, notes) for m in self.modalities}
        routing = {f"{source}->{target}": self._routing_result(source, target, record, notes)
                   for (source, target), record in self._routing.items()}
        return {"modalities": modalities, "routing": routing, "notes": notes}

    def _modality_result(self, m: str, notes: list[str]) -> dict:
        gates = self._gates[m]
        if gates.count == 0:
            notes.append(f"{m}: no valid position with a hotspot explanation (the variant has no "
                         "HGF, or the modality was never present); gate, hotspot-weight and "
                         "localisation statistics are null")
            return {"positions": 0, "gate": None, "hotspot_weight_mean": None,
                    "localisation": None}
        edges = np.linspace(0.0, 1.0, GATE_BINS + 1)
        gate = {
            "mean": gates.mean,
            "std": math.sqrt(gates.squared_deviations / gates.count),
            "near_zero": gates.near_zero / gates.count,
            "near_one": gates.near_one / gates.count,
            "histogram": {"edges": [float(e) for e in edges],
                          "fractions": [float(c) / gates.count for c in gates.histogram]},
        }
        return {"positions": gates.count, "gate": gate,
                "hotspot_weight_mean": gates.weight_sum / gates.count,
                "localisation": self._localisation_result(m, notes)}

    def _localisation_result(self, m: str, notes: list[str]) -> dict | None:
        record = self._localisation[m]
        if record.utterances_with_truth == 0:
            notes.append(f"{m}: no utterance has hotspot ground truth (only synthetic data has "
                         "it); localisation AUROC is null")
            return None
        if record.utterances_with_hotspot == 0:
            notes.append(f"{m}: {record.utterances_with_truth} utterances have ground truth but "
                         "none has a true hotspot position; localisation AUROC is null")
            return {"utterances_with_truth": record.utterances_with_truth,
                    "utterances_scored": 0, "positions": 0, "true_positions": 0, "auroc": None,
                    "mean_utterance_auroc": None, "utterances_in_mean": 0, "prior": None}
        weights = np.concatenate(record.weights)
        prior = np.concatenate(record.prior)
        truth = np.concatenate(record.truth)
        has_prior = np.concatenate(record.has_prior)
        per_utterance = np.asarray(record.utterance_auroc)
        per_utterance_prior = np.asarray(record.utterance_prior_auroc)
        pooled = _auroc_or_none(weights, truth, f"{m}: pooled hotspot-weight AUROC", notes)
        if per_utterance.size == 0:
            notes.append(f"{m}: every scored utterance has only true positions; the mean "
                         "per-utterance AUROC is null")
        result = {"utterances_with_truth": record.utterances_with_truth,
                  "utterances_scored": record.utterances_with_hotspot,
                  "positions": int(truth.size), "true_positions": int(truth.sum()),
                  "auroc": pooled, "mean_utterance_auroc": _mean_or_none(per_utterance),
                  "utterances_in_mean": int(per_utterance.size), "prior": None}
        if not has_prior.any():
            notes.append(f"{m}: no scored utterance has a rule-based prior; the prior AUROC is "
                         "null")
            return result
        with_prior = ~np.isnan(per_utterance_prior)
        result["prior"] = {
            "positions": int(has_prior.sum()),
            "auroc": _auroc_or_none(prior[has_prior], truth[has_prior],
                                    f"{m}: pooled prior AUROC", notes),
            "mean_utterance_auroc": _mean_or_none(per_utterance_prior[with_prior]),
            # The learned weights on exactly the same positions, for a like-for-like comparison.
            "learned_auroc": _auroc_or_none(weights[has_prior], truth[has_prior],
                                            f"{m}: pooled hotspot-weight AUROC on prior "
                                            "utterances", notes),
            "learned_mean_utterance_auroc": _mean_or_none(per_utterance[with_prior]),
            "utterances_in_mean": int(with_prior.sum()),
        }
        return result

    def _routing_result(self, source: str, target: str, record: _Routing,
                        notes: list[str]) -> dict:
        name = f"MoA {source}->{target}"
        result = {"num_experts": record.num_experts, "top_k": record.top_k,
                  "utterances": record.utterances, "usage": None, "mean_probability": None,
                  "entropy": None, "max_entropy": math.log(record.num_experts),
                  "active_experts": None, "collapsed": None, "per_class": {}}
        total_slots = int(record.slots.sum())
        if record.utterances == 0 or total_slots == 0:
            notes.append(f"{name}: no valid utterance was routed; routing statistics are null")
            return result
        usage = record.slots / total_slots
        active = int((usage >= ACTIVE_SHARE).sum())
        result.update(usage=usage.tolist(),
                      mean_probability=(record.probability_sum / record.utterances).tolist(),
                      entropy=record.entropy_sum / record.utterances, active_experts=active)
        if record.num_experts == 1:
            notes.append(f"{name}: a single expert, nothing to route; collapse is not judged")
        else:
            needed = max(2, min(record.top_k + 1, record.num_experts))
            top_share = float(usage.max())
            collapsed = top_share > COLLAPSE_MAX_SHARE or active < needed
            result["collapsed"] = collapsed
            if collapsed:
                notes.append(
                    f"WARNING {name}: routing collapsed: expert {int(usage.argmax())} takes "
                    f"{top_share:.0%} of the TopK slots and {active} of {record.num_experts} "
                    f"experts get >= {ACTIVE_SHARE:.0%} (TopK {record.top_k}, at least {needed} "
                    "expected)")
        for c, label in enumerate(self.label_names):
            count = int(record.class_utterances[c])
            class_slots = int(record.class_slots[c].sum())
            result["per_class"][label] = {
                "utterances": count,
                "usage": (record.class_slots[c] / class_slots).tolist() if class_slots else None,
                "entropy": float(record.class_entropy_sum[c] / count) if count else None,
            }
        return result


def _auroc_or_none(scores: np.ndarray, labels: np.ndarray, what: str,
                   notes: list[str]) -> float | None:
    if labels.all() or not labels.any():
        notes.append(f"{what} is null: the positions are all true or all false")
        return None
    return auroc(scores, labels)


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def format_diagnostics(result: dict) -> str:
    """A few console lines: gates and localisation per modality, routing per pair, notes."""
    lines = []
    for m, summary in result["modalities"].items():
        gate = summary["gate"]
        if gate is None:
            text = f"{m}: no gate statistics"
        else:
            text = (f"{m}: gate mean {gate['mean']:.3f} std {gate['std']:.3f} "
                    f"(<{NEAR_ZERO}: {gate['near_zero']:.1%}, >{NEAR_ONE}: "
                    f"{gate['near_one']:.1%}), hotspot weight mean "
                    f"{summary['hotspot_weight_mean']:.3f}")
        localisation = summary["localisation"]
        if localisation is not None and localisation["auroc"] is not None:
            text += (f", localisation AUROC {localisation['auroc']:.3f} (per utterance "
                     f"{_number(localisation['mean_utterance_auroc'])})")
            prior = localisation["prior"]
            if prior is not None:
                text += (f", prior AUROC {_number(prior['auroc'])} vs learned "
                         f"{_number(prior['learned_auroc'])} on the same positions")
        lines.append(text)
    for pair, summary in result["routing"].items():
        if summary["usage"] is None:
            lines.append(f"{pair}: not routed")
            continue
        usage = " ".join(f"{share:.2f}" for share in summary["usage"])
        flag = " COLLAPSED" if summary["collapsed"] else ""
        lines.append(f"{pair}: usage [{usage}], entropy {summary['entropy']:.3f} / "
                     f"{summary['max_entropy']:.3f} nats{flag}")
    lines.extend(f"note: {note}" for note in result["notes"])
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
