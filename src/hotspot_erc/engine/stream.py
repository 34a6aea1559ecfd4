"""Follow a live conversation: each new utterance gets its emotion as soon as it arrives.

::

    stream = StreamingPredictor(Predictor.load("runs/causal"))
    update = stream.push(Utterance("u1", "Ana", "I can't believe you did that!"))
    update.utterance.label, update.revisions

:meth:`StreamingPredictor.push` extracts the features of the new utterance alone (the text
encoder on its text; audio and video from the utterance's own recording, ``Utterance.media``, in
this process), appends it to the conversation so far, runs the model over the last
``window`` utterances of it, and returns a :class:`StreamUpdate`: the new utterance's
:class:`~hotspot_erc.engine.prediction.UtterancePrediction` and the earlier utterances whose
label changed, each a :class:`Revision` saying from what to what.

Whether earlier labels move depends on the checkpoint. A ``causal`` one (graph edges to the
past only, :mod:`hotspot_erc.model.variants`) computes every utterance from it and earlier ones,
so an earlier output is final when it is first given (within the window) and there are no
revisions. An offline one uses later utterances as context (``graph.future``), so its earlier
labels are revised as that context arrives, which is what a reviewer of a finished conversation
wants and a live display must be ready for. So is per-speaker feature normalisation, whose
statistics grow with the conversation.

Each push costs one utterance's extraction and one forward pass over at most ``window``
utterances. An output reads the utterances its graph reaches (:func:`context_reach`: two layers
of ``graph.past`` utterances back and ``graph.future`` ahead), so the default window, all of
that reach, gives every output exactly as a pass over the whole conversation would; revisions
are judged only for utterances whose whole past reach is inside the window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hotspot_erc.data.dialogue import Dataset, Dialogue, FeatureSpec, ModalityFeatures, Utterance
from hotspot_erc.engine.predict import Predictor, failure_notice
from hotspot_erc.engine.prediction import ConversationPrediction, UtterancePrediction
from hotspot_erc.model.config import ModelConfig
from hotspot_erc.model.graph import CrossModalGraph


def context_reach(config: ModelConfig) -> tuple[int, int] | None:
    """How many utterances before and after its own one output of this model reads; None when
    it reads the whole dialogue (a bidirectional dialogue context, pairwise transformers)."""
    if config.pairwise_crossmodal or (config.use_graph and config.graph.dialogue_context):
        return None
    if not (config.use_graph and config.graph.temporal_edges):
        return 0, 0
    return (CrossModalGraph.HOPS * config.graph.past,
            CrossModalGraph.HOPS * config.graph.future)


@dataclass
class Revision:
    """An earlier utterance whose predicted label changed with the context that followed it."""

    id: str
    previous: str
    label: str
    probabilities: dict[str, float]

    def to_json(self) -> dict:
        return {"id": self.id, "previous": self.previous, "label": self.label,
                "probabilities": dict(self.probabilities)}


@dataclass
class StreamUpdate:
    """What one :meth:`StreamingPredictor.push` returns."""

    utterance: UtterancePrediction
    revisions: list[Revision] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"utterance": self.utterance.to_json(),
                "revisions": [r.to_json() for r in self.revisions],
                "notices": list(self.notices), "timings": dict(self.timings)}


class StreamingPredictor:
    """A conversation that grows one utterance at a time, predicted after each.

    Args:
        predictor (Predictor): the loaded checkpoint and its extractors (shared: a server keeps
            one predictor and opens one stream per connection).
        name (str): the conversation's name in the results.
        window (int | None): the most recent utterances the model reads on each push (>= 1);
            None: the model's whole reach (:func:`context_reach`), or every utterance so far
            when that reach is the whole dialogue.
    """

    def __init__(self, predictor: Predictor, name: str = "live",
                 window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError(f"StreamingPredictor: window must be >= 1, got {window}")
        self.predictor = predictor
        self.name = name
        self.reach = context_reach(predictor.checkpoint.config)
        if window is None and self.reach is not None:
            window = sum(self.reach) + 1
        self.window = window
        self.utterances: list[Utterance] = []
        self.labels: dict[str, str] = {}
        self._latest: ConversationPrediction | None = None
        predictor.check_recipe()
        self._warm_up()

    @property
    def causal(self) -> bool:
        """Whether the checkpoint's outputs for an utterance never depend on later ones."""
        return self.predictor.checkpoint.config.causal

    @property
    def conversation(self) -> ConversationPrediction | None:
        """The predictions of the last push's window (None before the first push)."""
        return self._latest

    def push(self, utterance: Utterance) -> StreamUpdate:
        """Add ``utterance`` (its ``features`` are ignored: they are extracted here) and predict.

        An id used before, or an utterance without a speaker, is a ValueError naming the field.
        """
        if not isinstance(utterance.uid, str) or not utterance.uid:
            raise ValueError("utterance.id: expected a non-empty string")
        if utterance.uid in self.labels:
            raise ValueError(f"utterance.id: {utterance.uid!r} was pushed before; ids must be "
                             "unique within a conversation")
        if not isinstance(utterance.speaker, str) or not utterance.speaker.strip():
            raise ValueError(f"utterance {utterance.uid!r}: field speaker: expected a "
                             "non-empty string")
        began = time.perf_counter()
        notices: list[str] = []
        features = self._extract(utterance, notices)
        self.utterances.append(Utterance(utterance.uid, utterance.speaker, utterance.text,
                                         utterance.start, utterance.end, features=features,
                                         media=dict(utterance.media)))
        extracted = time.perf_counter()
        recent = self.utterances[-self.window:] if self.window else list(self.utterances)
        # Outputs before this index in the window lack part of their past: not judged.
        judged_from = (0 if self.reach is None or len(recent) == len(self.utterances)
                       else self.reach[0])
        dataset = Dataset(self.name, [Dialogue(self.name, recent)],
                          list(self.predictor.checkpoint.label_names), {"all": [self.name]},
                          FeatureSpec({m: spec for m, spec in
                                       self.predictor.checkpoint.feature_spec.modalities.items()
                                       if any(u.has(m) for u in recent)}))
        dataset = self.predictor.normalise_speakers(dataset)
        conversation = self.predictor.run_model(dataset, notices)
        self._latest = conversation
        revisions = []
        for prediction in conversation.utterances[judged_from:-1]:
            previous = self.labels.get(prediction.id)
            if previous is not None and previous != prediction.label:
                revisions.append(Revision(prediction.id, previous, prediction.label,
                                          dict(prediction.probabilities)))
            self.labels[prediction.id] = prediction.label
        newest = conversation.utterances[-1]
        self.labels[newest.id] = newest.label
        return StreamUpdate(newest, revisions, notices, {
            "extract_s": round(extracted - began, 4),
            "model_s": round(time.perf_counter() - extracted, 4)})

    def _extract(self, utterance: Utterance, notices: list[str]) -> dict[str, ModalityFeatures]:
        """The checkpoint's features of ``utterance`` alone; what it lacks is missing."""
        from hotspot_erc.features.extract import extract_media_dialogue

        extractors = self.predictor.extractors()
        features = {}
        for modality in self.predictor.checkpoint.feature_spec.modalities:
            if modality == "text":
                # The newest utterance, read after the preceding turns its features depend on.
                reach = extractors["text"].context
                before = self.utterances[len(self.utterances) - reach:] if reach else []
                features[modality] = (
                    extractors["text"].extract_conversations(
                        [Dialogue(self.name, [*before, utterance])])[0][-1]
                    if utterance.text.strip() else ModalityFeatures.missing())
            elif modality in utterance.media:
                alone = Dialogue(self.name, [utterance])
                _, _, records, failures, _ = extract_media_dialogue(
                    alone, modality, extractors, self.predictor.extract_config())
                notices += [failure_notice(failure, 1) for failure in failures]
                features[modality] = records[0]
            else:
                features[modality] = ModalityFeatures.missing()
        return features

    def _warm_up(self) -> None:
        """Load the text encoder and pay the model's first-call costs before the first push."""
        if "text" in self.predictor.checkpoint.feature_spec.modalities:
            self.predictor.extractors()["text"].extract_conversations(
                [Dialogue("warm-up", [Utterance("u0", "A", "warming up")])])
        self.predictor.warm_up()
