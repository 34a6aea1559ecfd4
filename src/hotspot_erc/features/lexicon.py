"""A rule-based hotspot prior per word, from published emotion and sentiment lexicons.

Each word gets an emotional intensity in [0, 1] from every lexicon that knows it:

* VADER (Hutto & Gilbert, 2014; package ``vaderSentiment``, MIT): valence ``v`` in [-4, 4],
  intensity ``|v| / 4``;
* AFINN-en-165 (Nielsen, 2011; package ``afinn``, data ODbL): score ``a`` in [-5, 5], intensity
  ``|a| / 5``;
* NRC EmoLex (Mohammad & Turney, 2013; packaged in ``nrclex``), **optional**: a word associated
  with one of the eight basic emotions scores ``NRC_EMOTION_INTENSITY``, a word with only a
  polarity ``NRC_POLARITY_INTENSITY``. EmoLex is licensed for research and non-commercial use
  only: it is used when ``nrclex`` is installed and ``use_nrc=True``, and is left out otherwise
  (pass ``use_nrc=False`` for commercial work). The recipe version says whether it was used.

The salience of word ``i`` combines them (max, because the lexicons disagree on coverage far more
than on scale), with two cheap context rules taken from VADER:

    base_i     = max(vader_i, afinn_i, nrc_i)
    base_i    += booster(word_{i-1}) / 4    if base_i > 0   ("very" +0.293, "barely" -0.293)
    base_i    *= |N_SCALAR| = 0.74          if base_i > 0 and a negator is in words i-3 .. i-1
    salience_i = clip(base_i, FLOOR, 1)

``FLOOR`` keeps neutral words slightly above zero so that a prior never rules a position out.
Words are matched lower-cased, first as written (VADER lists emoticons such as ``:)``), then with
leading and trailing punctuation removed, then without a possessive ``'s``; typographic
apostrophes count as ``'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

FLOOR = 0.05
NRC_EMOTION_INTENSITY = 0.4
NRC_POLARITY_INTENSITY = 0.2
NEGATION_WINDOW = 3
NEGATION_SCALE = 0.74  # |vaderSentiment.N_SCALAR|: VADER's damping of a negated word
LEXICON_RECIPE = "lex1"

NRC_EMOTIONS = frozenset(
    {"anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust"})
_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")
_INSTALL_HINT = "install the text extra: pip install 'hotspot-erc[text]'"


@dataclass(frozen=True)
class EmotionLexicons:
    """The word tables the salience is computed from (all keys lower-case)."""

    vader: dict[str, float]  # valence in [-4, 4]
    afinn: dict[str, int]  # score in [-5, 5]
    nrc: dict[str, list[str]] | None  # emotion and polarity names; None when not used
    boosters: dict[str, float]  # VADER intensifiers (+0.293) and dampeners (-0.293)
    negators: frozenset[str]


@lru_cache(maxsize=2)
def load_lexicons(use_nrc: bool = True) -> EmotionLexicons:
    """Load the lexicons from their packages once. NRC is skipped if absent or not wanted."""
    try:
        from vaderSentiment import vaderSentiment as vader_module
    except ImportError as error:
        raise ImportError(f"the VADER lexicon (package vaderSentiment) is missing: "
                          f"{_INSTALL_HINT}") from error
    try:
        from afinn import Afinn
    except ImportError as error:
        raise ImportError(f"the AFINN lexicon (package afinn) is missing: {_INSTALL_HINT}") \
            from error
    vader = {word.lower(): float(value)
             for word, value in vader_module.SentimentIntensityAnalyzer().lexicon.items()}
    afinn_reader = Afinn()
    afinn_table = afinn_reader.read_word_file(afinn_reader.full_filename("AFINN-en-165.txt"))
    # AFINN also lists phrases ("does not work"); only single words can score a word piece.
    afinn = {word.lower(): int(score) for word, score in afinn_table.items() if " " not in word}
    return EmotionLexicons(
        vader=vader, afinn=afinn, nrc=_load_nrc() if use_nrc else None,
        boosters={word.lower(): float(value) for word, value in vader_module.BOOSTER_DICT.items()},
        negators=frozenset(word.lower() for word in vader_module.NEGATE))


def _load_nrc() -> dict[str, list[str]] | None:
    """NRC EmoLex as packaged by ``nrclex`` (read directly: its text mode needs NLTK corpora)."""
    try:
        table = resources.files("nrclex.data").joinpath("nrc_en.json")
    except ModuleNotFoundError:
        return None
    with table.open("r", encoding="utf-8") as handle:
        return {word.lower(): list(tags) for word, tags in json.load(handle).items()}


def lexicon_sources(use_nrc: bool = True) -> list[str]:
    """The lexicons actually used (NRC only when installed and allowed): they change the prior."""
    return ["vader", "afinn"] + (["nrc"] if load_lexicons(use_nrc).nrc is not None else [])


def lexicon_version(use_nrc: bool = True) -> str:
    """The recipe identifier, naming the lexicons actually used (it changes the values)."""
    return "-".join([LEXICON_RECIPE, *lexicon_sources(use_nrc)])


def _lookup_forms(word: str) -> list[str]:
    lowered = word.lower().replace("\u2019", "'").replace("\u2018", "'")
    stripped = _EDGE_PUNCTUATION.sub("", lowered)
    forms = [lowered, stripped, stripped.removesuffix("'s")]
    return list(dict.fromkeys(form for form in forms if form))


def _intensity(forms: list[str], lexicons: EmotionLexicons) -> float:
    best = 0.0
    for form in forms:
        if form in lexicons.vader:
            best = max(best, abs(lexicons.vader[form]) / 4.0)
        if form in lexicons.afinn:
            best = max(best, abs(lexicons.afinn[form]) / 5.0)
        if lexicons.nrc is not None and form in lexicons.nrc:
            tags = lexicons.nrc[form]
            best = max(best, NRC_EMOTION_INTENSITY if NRC_EMOTIONS.intersection(tags)
                       else NRC_POLARITY_INTENSITY)
    return best


def _is_negator(forms: list[str], lexicons: EmotionLexicons) -> bool:
    return any(form in lexicons.negators or "n't" in form for form in forms)


def word_salience(words: Sequence[str], use_nrc: bool = True) -> np.ndarray:
    """Hotspot prior per word, ``(len(words),)`` float32 in [FLOOR, 1] (see module docstring)."""
    lexicons = load_lexicons(use_nrc)
    forms = [_lookup_forms(word) for word in words]
    salience = np.full(len(words), FLOOR, dtype=np.float32)
    for index, word_forms in enumerate(forms):
        base = _intensity(word_forms, lexicons)
        if base == 0.0:
            continue
        if index > 0:
            booster = max((lexicons.boosters.get(form, 0.0) for form in forms[index - 1]),
                          key=abs)
            base += booster / 4.0
        window = forms[max(0, index - NEGATION_WINDOW):index]
        if any(_is_negator(previous, lexicons) for previous in window):
            base *= NEGATION_SCALE
        salience[index] = min(max(base, FLOOR), 1.0)
    return salience
