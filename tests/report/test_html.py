import base64
import copy
import re
import sys

import pytest

from hotspot_erc.engine.prediction import ConversationPrediction, ModalityEvidence, Routing
from hotspot_erc.report.conversation import ReportInputError, label_colours
from hotspot_erc.report.html import render_report, write_report

SCRIPT_PAYLOAD = "<script>alert(1)</script>"
ONERROR_PAYLOAD = "<img src=x onerror=alert(1)>"
ATTRIBUTE_PAYLOAD = '" onmouseover="alert(1)" x="'


@pytest.fixture(scope="module")
def conversation(example_conversation):
    return example_conversation()


@pytest.fixture(scope="module")
def page(conversation):
    return render_report(conversation)


@pytest.fixture
def hostile(conversation):
    """The example with markup in every string the page shows."""
    hostile = copy.deepcopy(conversation)
    first, second = hostile.utterances[:2]
    first.text = f"I said {SCRIPT_PAYLOAD} twice"
    first.modalities["text"].tokens[0] = SCRIPT_PAYLOAD
    first.modalities["text"].hotspots[0].tokens = ONERROR_PAYLOAD
    second.speaker = ONERROR_PAYLOAD
    second.id = ATTRIBUTE_PAYLOAD
    second.routing = {"text-><b>audio</b>": Routing(experts=[ONERROR_PAYLOAD, "conv"],
                                                    weights=[0.7, 0.3])}
    hostile.name = SCRIPT_PAYLOAD
    hostile.checkpoint = ONERROR_PAYLOAD
    hostile.media = {"audio": f"/data/{SCRIPT_PAYLOAD}.wav"}
    hostile.notices = [ONERROR_PAYLOAD]
    # A label name is shown too: rename "angry" everywhere.
    renamed = "<i onclick=alert(1)>angry</i>"
    hostile.label_names = [renamed if n == "angry" else n for n in hostile.label_names]
    for utterance in hostile.utterances:
        utterance.probabilities = {renamed if k == "angry" else k: v
                                   for k, v in utterance.probabilities.items()}
        if utterance.label == "angry":
            utterance.label = renamed
    return hostile


def test_timeline_has_one_element_per_utterance_with_widths_from_durations(
        conversation, page, parse_page):
    dom = parse_page(page)
    bars = [e for e in dom.find(cls="utt") if e.inside("timeline")]
    assert len(bars) == 6
    assert sorted(b.attrs["data-id"] for b in bars) == sorted(
        u.id for u in conversation.utterances)
    span = conversation.utterances[-1].end - conversation.utterances[0].start
    for bar in bars:
        utterance = next(u for u in conversation.utterances if u.id == bar.attrs["data-id"])
        width = float(re.search(r"width:([\d.]+)%", bar.attrs["style"]).group(1))
        left = float(re.search(r"left:([\d.]+)%", bar.attrs["style"]).group(1))
        assert width == pytest.approx(100 * (utterance.end - utterance.start) / span, abs=1e-3)
        assert left == pytest.approx(100 * utterance.start / span, abs=1e-3)
        assert label_colours(conversation.label_names)[utterance.label] in bar.attrs["style"]
    assert len([r for r in dom.find(cls="row") if r.inside("timeline")]) == 2


def test_timeline_without_times_gives_equal_widths(conversation, parse_page):
    untimed = copy.deepcopy(conversation)
    untimed.utterances[3].start = None
    dom = parse_page(render_report(untimed, figures=False))
    widths = {re.search(r"width:([\d.]+)%", b.attrs["style"]).group(1)
              for b in dom.find(cls="utt")}
    assert widths == {f"{100 / 6:.3f}"}
    assert "utterance order (no times given)" in dom.visible_text()
    assert "time unknown" in dom.by_id("utt-3").content()


def test_speaker_rows_follow_first_appearance(conversation, parse_page):
    dom = parse_page(render_report(conversation, figures=False))
    assert [e.content() for e in dom.find(cls="who")] == ["Ana", "Ben"]
    for bar in dom.find(cls="utt"):
        utterance = next(u for u in conversation.utterances if u.id == bar.attrs["data-id"])
        row = bar.parent.parent
        assert [c.content() for c in dom.find(cls="who") if c.parent is row] == \
            [utterance.speaker]


def test_header_shows_name_checkpoint_media_notices_and_legend(conversation, page, parse_page):
    dom = parse_page(page)
    header = dom.find("header")[0].content()
    assert "session1" in header and conversation.checkpoint in header
    assert "media/session1.wav" in header and "media/session1.mp4" in header
    assert conversation.notices[0] in [e.content() for e in dom.find("li")]
    assert [e.content() for e in dom.find(cls="chip") if e.parent.attrs.get("class") == "legend"] \
        == conversation.label_names


def test_card_shows_prediction_probabilities_gates_and_routing(conversation, page, parse_page):
    dom = parse_page(page)
    utterance = conversation.utterances[1]
    card = dom.by_id("utt-1")
    assert card.attrs["data-id"] == utterance.id
    text = card.content()
    assert "Ben" in text and "2.83\u20135.13 s" in text
    probability = utterance.probabilities[utterance.label]
    assert f"{utterance.label} {probability:.2f}" in text
    bars = [e for e in dom.find("span") if e.parent is not None and e.parent.classes == {"bar"}
            and e.parent.parent.inside("utt-1")]
    widths = [float(re.search(r"width:([\d.]+)%", b.attrs["style"]).group(1)) for b in bars]
    assert widths == pytest.approx([100 * utterance.probabilities[n]
                                    for n in conversation.label_names], abs=0.06)
    predicted = [e.content() for e in dom.find(cls="predicted") if e.inside("utt-1")]
    assert predicted == [utterance.label, f"{probability:.3f}"]
    for modality in ("text", "audio", "video"):
        gate = utterance.modalities[modality].gate_mean
        block = [e for e in dom.find(cls=modality) if e.inside("utt-1")][0].content()
        assert f"gate {gate:.2f}" in block
    routing = [e for e in dom.find("tr") if e.inside("utt-1")]
    assert len(routing) == len(utterance.routing)
    choice = utterance.routing["text->audio"]
    expected = " \u00b7 ".join(f"{e} {w:.2f}" for e, w in sorted(
        zip(choice.experts, choice.weights, strict=True), key=lambda item: -item[1]))
    assert ["text \u2192 audio", expected] in [
        [c.content() for c in dom.elements if c.parent is row] for row in routing]


def test_audio_and_video_spans_are_listed_in_seconds(conversation, page, parse_page):
    dom = parse_page(page)
    utterance = conversation.utterances[1]
    for modality in ("audio", "video"):
        block = [e for e in dom.find(cls=modality) if e.inside("utt-1")][0].content()
        for span in utterance.modalities[modality].hotspots:
            assert f"{span.start:.2f}\u2013{span.end:.2f} s ({span.weight:.3f})" in block


def test_word_pieces_are_joined_and_shaded_by_weight(conversation, page, parse_page):
    dom = parse_page(page)
    tokens = [e for e in dom.find(cls="tokens") if e.inside("utt-1")][0]
    assert tokens.content() == "honestly, it was unbelievable luck."
    evidence = conversation.utterances[1].modalities["text"]
    pieces = [e for e in dom.find(cls="tok") if e.parent is tokens]
    assert [p.content() for p in pieces] == [t.removeprefix("##") for t in evidence.tokens]
    peak = max(evidence.weights)
    for piece, weight in zip(pieces, evidence.weights, strict=True):
        alpha = float(re.search(r"rgba\([\d, ]+,([\d.]+)\)", piece.attrs["style"]).group(1))
        assert alpha == pytest.approx(weight / peak, abs=0.006)
    hot = {p for span in evidence.hotspots for p in range(span.first, span.last + 1)}
    assert {i for i, p in enumerate(pieces) if "hot" in p.classes} == hot


def test_apostrophes_and_masked_pieces(conversation, parse_page):
    changed = copy.deepcopy(conversation)
    evidence = changed.utterances[0].modalities["text"]
    evidence.valid[1] = False
    dom = parse_page(render_report(changed, figures=False))
    tokens = [e for e in dom.find(cls="tokens") if e.inside("utt-0")][0]
    assert tokens.content() == "i can't believe you did that again!"
    masked = [e for e in dom.find(cls="masked") if e.parent is tokens]
    assert [m.content() for m in masked] == [evidence.tokens[1]]
    assert "rgba(230, 159, 0,0.00)" in masked[0].attrs["style"]


def test_missing_modalities_are_named(conversation, parse_page):
    changed = copy.deepcopy(conversation)
    del changed.utterances[4].modalities["audio"]
    changed.utterances[4].routing = {}
    dom = parse_page(render_report(changed, figures=False))
    camera_off = dom.by_id("utt-2").content()
    assert "no video: missing for this utterance (masked)" in camera_off
    unread = dom.by_id("utt-4").content()
    assert "no audio: not read by the model" in unread
    assert "no aligner routing for this utterance" in unread


def test_figures_are_embedded_as_data_uris(conversation, page, parse_page):
    dom = parse_page(page)
    images = dom.find("img")
    present = sum(u.modalities[m].present for u in conversation.utterances
                  for m in ("audio", "video"))
    assert len(images) == 1 + present == 12
    for image in images:
        assert image.attrs["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image.attrs["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert [i for i in images if i.inside("utt-2")][0].attrs["alt"].startswith("audio")
    assert parse_page(render_report(conversation, figures=False)).find("img") == []


def test_hostile_strings_stay_text(hostile, parse_page):
    page = render_report(hostile)
    dom = parse_page(page)
    assert dom.find("script") == []
    for element in dom.elements:
        assert not [name for name in element.attrs if name.startswith("on")], element
        if element.tag == "img":
            assert element.attrs["src"].startswith("data:")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "http://" not in page and "https://" not in page
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    # The payloads are shown as what they are: text.
    text = dom.visible_text()
    assert f"I said {SCRIPT_PAYLOAD} twice" in text
    assert text.count(ONERROR_PAYLOAD) >= 5  # speaker (timeline + card), notice, path, expert
    assert SCRIPT_PAYLOAD in dom.find("title")[0].content()
    assert [e for e in dom.find(cls="utt") if e.attrs["data-id"] == ATTRIBUTE_PAYLOAD]
    assert dom.by_id("utt-1").attrs["data-id"] == ATTRIBUTE_PAYLOAD
    assert "<i onclick=alert(1)>angry</i>" in text


def test_page_is_self_contained(page, parse_page):
    dom = parse_page(page)
    assert "http://" not in page and "https://" not in page
    assert dom.find("script") == [] and dom.find("link") == []
    assert [e.attrs["content"] for e in dom.find("meta")
            if e.attrs.get("http-equiv") == "Content-Security-Policy"] == [
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    assert "@import" not in page and "url(" not in page


def test_write_report_writes_page_and_its_figures(conversation, tmp_path, parse_page):
    path = write_report(conversation, tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    embedded = [base64.b64decode(i.attrs["src"].split(",", 1)[1])
                for i in parse_page(page).find("img")]
    files = sorted((tmp_path / "figures").iterdir())
    assert [f.name for f in files] == sorted(
        ["timeline.png"] + [f"u{i:03d}-{m}.png" for i in range(6) for m in ("audio", "video")
                            if not (i == 2 and m == "video")])
    assert sorted(f.read_bytes() for f in files) == sorted(embedded)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_rewrite_removes_own_stale_figures_only(example_conversation, tmp_path):
    write_report(example_conversation(6), tmp_path)
    (tmp_path / "figures" / "my-notes.png").write_bytes(b"mine")
    write_report(example_conversation(2), tmp_path)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["my-notes.png", "timeline.png", "u000-audio.png", "u000-video.png",
                     "u001-audio.png", "u001-video.png"]


def test_without_matplotlib_the_page_says_figures_are_left_out(conversation, monkeypatch,
                                                               tmp_path, parse_page):
    monkeypatch.setitem(sys.modules, "hotspot_erc.report.figures", None)
    dom = parse_page(write_report(conversation, tmp_path).read_text(encoding="utf-8"))
    assert dom.find("img") == [] and not (tmp_path / "figures").exists()
    notices = [e.content() for e in dom.find("li")]
    assert notices[0] == conversation.notices[0]
    assert notices[1].startswith("figures left out:") and "matplotlib" in notices[1]
    assert len(dom.find(cls="utt")) == 6


def test_empty_conversation_renders(parse_page):
    empty = ConversationPrediction(name="nothing", label_names=["neutral"])
    dom = parse_page(render_report(empty))
    assert dom.find(cls="utt") == [] and dom.find(cls="card") == []


@pytest.mark.parametrize("change, field", [
    (lambda c: c.utterances[1].probabilities.update(happy="1;background:url(x)"),
     "conversation.utterances[1].probabilities['happy']"),
    (lambda c: setattr(c.utterances[0], "label", "bored"), "conversation.utterances[0].label"),
    (lambda c: c.utterances[3].modalities["audio"].times.pop(),
     "conversation.utterances[3].modalities.audio.times"),
    (lambda c: c.utterances[2].modalities["text"].valid.append(True),
     "conversation.utterances[2].modalities.text.valid"),
    (lambda c: setattr(c.utterances[5], "end", c.utterances[5].start - 1),
     "conversation.utterances[5].end"),
    (lambda c: setattr(c.utterances[4].routing["text->audio"], "weights", ["0.5", 0.5]),
     "conversation.utterances[4].routing['text->audio'].weights[0]"),
    (lambda c: c.utterances[0].modalities.update(smell=ModalityEvidence.absent()),
     "conversation.utterances[0].modalities"),
    (lambda c: setattr(c.utterances[1].modalities["audio"], "gate_mean", "0.5"),
     "conversation.utterances[1].modalities.audio.gate_mean"),
])
def test_malformed_input_names_the_field(conversation, change, field):
    broken = copy.deepcopy(conversation)
    change(broken)
    with pytest.raises(ReportInputError) as error:
        render_report(broken, figures=False)
    assert str(error.value).startswith(field + ":")
