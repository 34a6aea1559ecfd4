from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("vaderSentiment")
pytest.importorskip("afinn")

from hotspot_erc.features.lexicon import (  # noqa: E402
    FLOOR,
    NRC_EMOTION_INTENSITY,
    lexicon_version,
    load_lexicons,
    word_salience,
)


def test_emotional_words_score_high_and_neutral_words_sit_on_the_floor():
    salience = word_salience(["furious", "table", "heartbroken", "the"])
    assert salience.dtype == np.float32 and salience.shape == (4,)
    assert salience[0] > 0.6 and salience[2] > 0.6  # VADER |-2.7|/4, AFINN |-3|/5
    assert salience[1] == pytest.approx(FLOOR) and salience[3] == pytest.approx(FLOOR)


def test_no_words_give_an_empty_prior():
    assert word_salience([]).shape == (0,)


def test_case_punctuation_and_typographic_apostrophes_do_not_change_the_match():
    plain, shouted, quoted = word_salience(["furious", "FURIOUS!", '"furious,"'])
    assert plain == shouted == quoted
    assert word_salience(["sad’s"])[0] == word_salience(["sad's"])[0] == word_salience(["sad"])[0]


def test_emoticons_are_matched_before_punctuation_is_stripped():
    assert word_salience([":)"])[0] > FLOOR


def test_boosters_raise_and_dampeners_lower_the_next_emotional_word():
    alone = word_salience(["i", "am", "angry"])[2]
    assert word_salience(["i", "am", "very", "angry"])[3] == pytest.approx(alone + 0.293 / 4)
    assert word_salience(["i", "am", "barely", "angry"])[3] == pytest.approx(alone - 0.293 / 4)
    # A booster before a neutral word does nothing: there is no emotion to intensify.
    assert word_salience(["very", "table"])[1] == pytest.approx(FLOOR)


def test_a_negator_within_three_words_damps_the_emotional_word():
    happy = word_salience(["i", "am", "happy"])[2]
    assert word_salience(["i", "am", "not", "happy"])[3] == pytest.approx(happy * 0.74)
    assert word_salience(["i", "don’t", "feel", "happy"])[3] == pytest.approx(happy * 0.74)
    assert word_salience(["not", "that", "i", "am", "happy"])[4] == pytest.approx(happy)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=20))
def test_salience_is_always_in_floor_to_one(words):
    salience = word_salience(words)
    assert salience.shape == (len(words),)
    assert np.all(salience >= FLOOR) and np.all(salience <= 1.0)


def test_nrc_is_optional_and_named_in_the_version():
    pytest.importorskip("nrclex")
    # "abacus" is in NRC EmoLex only (trust), in neither VADER nor AFINN.
    assert word_salience(["abacus"], use_nrc=True)[0] == pytest.approx(NRC_EMOTION_INTENSITY)
    assert word_salience(["abacus"], use_nrc=False)[0] == pytest.approx(FLOOR)
    assert lexicon_version(use_nrc=True).endswith("-nrc")
    assert "nrc" not in lexicon_version(use_nrc=False)


def test_a_missing_lexicon_package_names_the_extra(monkeypatch):
    load_lexicons.cache_clear()
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)
    try:
        with pytest.raises(ImportError, match=r"vaderSentiment.*hotspot-erc\[text\]"):
            word_salience(["furious"])
    finally:
        load_lexicons.cache_clear()
