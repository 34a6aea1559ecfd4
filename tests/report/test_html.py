import base64
import copy
import re
import sys

import pytest

from hotspot_erc.engine.prediction import ConversationPrediction, ModalityEvidence, Routing
from hotspot_erc.report.conversation import ReportInputError, label_colours
from hotspot_erc.report.html import render_report, write_report

SCRIPT_PAYLOAD = "<script>alert(1)</script>"
ALPHA = re.compile(r"rgba\([\d, ]+,([\d.]+)\)")
ONERROR_PAYLOAD = "<img src=x onerror=alert(1)>"
ATTRIBUTE_PAYLOAD = '" onmouseover="alert(1)" x="'


def _alpha(piece) -> float:
    """The opacity of a word piece's highlight."""
    return float(ALPHA.search(piece.attrs["style"]).group(1))


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
    hostile.model_card.dataset = SCRIPT_PAYLOAD
    hostile.model_card.domain = ONERROR_PAYLOAD
    hostile.model_card.intended_use = ATTRIBUTE_PAYLOAD
    hostile.model_card.demonstration = True
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
    for piece, weight in zip(pieces, evidence.weights, strict=True):
        assert _alpha(piece) == pytest.approx(weight, abs=0.006)
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


def test_figures_are_embedded_as_data_uris(conversation, page, parse_page):
    dom = parse_page(page)
    images = dom.find("img")
    present = sum(u.modalities[m].present for u in conversation.utterances
                  for m in ("audio", "video"))
    assert len(images) == present == 11  # the curves only: the timeline is HTML
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
    # speaker (timeline + card), notice, path, expert, card domain
    assert text.count(ONERROR_PAYLOAD) >= 6
    assert f"{SCRIPT_PAYLOAD}: {ONERROR_PAYLOAD}" in dom.by_id("model-card").content()
    assert ATTRIBUTE_PAYLOAD in [e.content() for e in dom.find(cls="warning")][0]
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
        [f"u{i:03d}-{m}.png" for i in range(6) for m in ("audio", "video")
         if not (i == 2 and m == "video")])
    assert sorted(f.read_bytes() for f in files) == sorted(embedded)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_rewrite_removes_own_stale_figures_only(example_conversation, tmp_path):
    write_report(example_conversation(6), tmp_path)
    (tmp_path / "figures" / "my-notes.png").write_bytes(b"mine")
    (tmp_path / "figures" / "timeline.png").write_bytes(b"an older report's timeline")
    write_report(example_conversation(2), tmp_path)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["my-notes.png", "u000-audio.png", "u000-video.png", "u001-audio.png",
                     "u001-video.png"]


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


# -- issue 15: a report a non-expert reads correctly ------------------------------------------

def _pieces(dom, index: int) -> list:
    tokens = [e for e in dom.find(cls="tokens") if e.inside(f"utt-{index}")][0]
    return [e for e in dom.find(cls="tok") if e.parent is tokens]


def test_highlight_is_on_one_scale_for_every_card(conversation, parse_page):
    """A neutral line of near-equal small weights was shaded like a real peak, because each
    line was scaled to its own maximum."""
    changed = copy.deepcopy(conversation)
    flat = changed.utterances[4].modalities["text"]
    flat.weights = [0.017 + 0.016 * (i % 2) for i in range(len(flat.weights))]
    flat.hotspots = []
    peaked = changed.utterances[5].modalities["text"]
    peaked.weights = [0.9 if i == 3 else 0.017 for i in range(len(peaked.weights))]
    dom = parse_page(render_report(changed, figures=False))
    assert max(_alpha(p) for p in _pieces(dom, 4)) <= 0.04
    alphas = [_alpha(p) for p in _pieces(dom, 5)]
    assert alphas[3] == pytest.approx(0.9) and min(alphas) == pytest.approx(0.02)
    # The same weight gives the same highlight on any card.
    assert _alpha(_pieces(dom, 4)[0]) == pytest.approx(alphas[0])


def test_hotspots_below_the_threshold_are_neither_listed_nor_underlined(conversation,
                                                                         parse_page):
    """A span of weight 0.000 was shaded and listed as a hotspot."""
    changed = copy.deepcopy(conversation)
    utterance = changed.utterances[1]
    text = utterance.modalities["text"]
    text.weights = [0.0] * len(text.weights)
    for span in text.hotspots:
        span.weight = 0.0
    utterance.modalities["audio"].hotspots[0].weight = 0.19
    dom = parse_page(render_report(changed, figures=False))
    assert not [p for p in _pieces(dom, 1) if "hot" in p.classes]
    for modality in ("text", "audio"):
        block = [e for e in dom.find(cls=modality) if e.inside("utt-1")][0].content()
        assert "hotspots: none with a weight of at least 0.2" in block
    kept = [e for e in dom.find(cls="video") if e.inside("utt-1")][0].content()
    span = utterance.modalities["video"].hotspots[0]
    assert f"{span.start:.2f}\u2013{span.end:.2f} s ({span.weight:.3f})" in kept


def test_terms_are_explained_in_a_glossary_and_in_tooltips(conversation, page, parse_page):
    from hotspot_erc.report.glossary import EXPERTS, TERMS

    dom = parse_page(page)
    glossary = dom.by_id("how-to-read")
    assert "How to read this report" in glossary.content()
    defined = {e.content(): e for e in dom.find("dt") if e.inside("how-to-read")}
    assert {"gate", "prior", "hotspot", "hotspot weight", "aligner"} <= set(defined)
    assert set(EXPERTS) <= set(defined)
    gates = [e for e in dom.find(cls="gate") if e.inside("utt-0")]
    assert gates and all(g.attrs["title"] == TERMS["gate"] for g in gates)
    terms = {e.content(): e.attrs["title"] for e in dom.find(cls="term") if e.inside("utt-0")}
    assert terms["prior"] == TERMS["prior"] and terms["hotspots"] == TERMS["hotspot"]
    assert terms["aligner experts"] == TERMS["aligner"]
    for pair, choice in conversation.utterances[0].routing.items():
        for expert in choice.experts:
            assert terms[expert] == EXPERTS[expert], (pair, expert)


def test_the_timeline_is_drawn_once_with_ticks_in_seconds(conversation, page, parse_page):
    dom = parse_page(page)
    assert not [i for i in dom.find("img") if "timeline" in i.attrs.get("alt", "")]
    ticks = dom.find(cls="tick")
    assert all(t.inside("timeline") for t in ticks)
    assert [t.content() for t in ticks] == [f"{s} s" for s in range(0, 16, 2)]
    span = conversation.utterances[-1].end - conversation.utterances[0].start
    for tick, second in zip(ticks, range(0, 16, 2), strict=True):
        left = float(re.search(r"left:([\d.]+)%", tick.attrs["style"]).group(1))
        assert left == pytest.approx(100 * second / span, abs=1e-3)
    untimed = copy.deepcopy(conversation)
    untimed.utterances[0].start = None
    assert parse_page(render_report(untimed, figures=False)).find(cls="tick") == []


def _panels(dom, index: int) -> list[str]:
    return [sorted(e.classes - {"modality"})[0] for e in dom.find(cls="modality")
            if e.inside(f"utt-{index}")]


def _missing_lines(dom, index: int) -> list[str]:
    return [e.content() for e in dom.find(cls="missing") if e.inside(f"utt-{index}")]


def _text_only(conversation, model_modalities: list[str]):
    text_only = copy.deepcopy(conversation)
    text_only.media = {}
    text_only.model_card.modalities = model_modalities
    for utterance in text_only.utterances:
        utterance.routing = {}
        for modality in ("audio", "video"):
            if modality in model_modalities:
                utterance.modalities[modality] = ModalityEvidence.absent()
            else:
                del utterance.modalities[modality]
    return text_only


def test_a_text_model_gets_no_audio_or_video_panels(conversation, parse_page):
    dom = parse_page(render_report(_text_only(conversation, ["text"])))
    for index in range(6):
        assert _panels(dom, index) == ["text"]
        assert _missing_lines(dom, index) == []
    assert dom.find("img") == [] and dom.find(cls="routing") == []
    assert "no aligner routing" not in dom.visible_text()
    assert dom.find(cls="warning") == []


def test_media_missing_from_the_whole_input_is_said_once(conversation, parse_page):
    dom = parse_page(render_report(_text_only(conversation, ["text", "audio", "video"]),
                                   figures=False))
    for index in range(6):
        assert _panels(dom, index) == ["text"] and _missing_lines(dom, index) == []
    assert dom.find(cls="routing") == [] and "no aligner routing" not in dom.visible_text()
    (warning,) = [e.content() for e in dom.find(cls="warning")]
    assert "reads text, audio and video, but your input has no audio and video" in warning


def test_a_modality_missing_for_one_utterance_gets_one_notice(conversation, page, parse_page):
    dom = parse_page(page)
    assert _panels(dom, 2) == ["text", "audio"]  # the camera was off
    assert _missing_lines(dom, 2) == [
        "missing for this utterance: video (the model judged without it)"]
    assert _panels(dom, 1) == ["text", "audio", "video"] and _missing_lines(dom, 1) == []


def test_an_utterance_without_routing_says_so(conversation, parse_page):
    changed = copy.deepcopy(conversation)
    changed.utterances[4].routing = {}
    dom = parse_page(render_report(changed, figures=False))
    assert _missing_lines(dom, 4) == [
        "no aligner routing for this utterance (fewer than two modalities present)"]
    assert [e for e in dom.find(cls="routing") if e.inside("utt-3")]


def test_summary_counts_labels_per_speaker_and_links_the_moments(conversation, parse_page):
    changed = copy.deepcopy(conversation)
    for index in (1, 3):
        utterance = changed.utterances[index]
        utterance.label = "neutral"
        utterance.probabilities = {**utterance.probabilities, "neutral": 0.95}
    dom = parse_page(render_report(changed, figures=False))
    summary = dom.by_id("summary")
    rows = [[c.content() for c in dom.elements if c.parent is row]
            for row in dom.find("tr") if row.inside("summary")]
    assert rows[0] == ["speaker", *changed.label_names, "all"]
    assert rows[1] == ["Ana", "1", "", "", "1", "", "1", "3"]
    assert rows[2] == ["Ben", "2", "1", "", "", "", "", "3"]
    text = summary.content()
    assert "Dominant emotion: neutral (3 of 6 utterances)" in text
    # Ties in the order of the checkpoint's labels.
    assert "most frequent other than neutral: happy, angry, frustrated (1)" in text
    links = [e for e in dom.find("a") if e.inside("summary")]
    assert links[0].attrs["href"] == "#utt-1" and links[0].content() == "#2 Ben: neutral 0.95"
    for link in links:
        dom.by_id(link.attrs["href"][1:])  # every link leads to a card


def test_the_model_card_is_at_the_top(conversation, page, parse_page):
    dom = parse_page(page)
    card = dom.by_id("model-card")
    assert card.parent.tag == "header"
    rows = [[cell.content() for cell in dom.elements if cell.parent is row]
            for row in dom.find("tr") if row.inside("model-card")]
    facts = dict(rows)
    assert facts["trained on"].startswith("iemocap6: acted dyadic conversations")
    assert facts["your input"].startswith("a transcript of 6 utterances by 2 speakers with "
                                          "audio and video recordings; the model received "
                                          "text, audio, video")
    assert facts["scores"] == ("test: weighted F1 63.1 \u00b7 accuracy 64.0 \u00b7 macro F1 "
                               "60.2; validation: weighted F1 65.2 \u00b7 accuracy 66.1")
    assert facts["labels"] == ", ".join(conversation.label_names)
    assert facts["intended use"] == conversation.model_card.intended_use
    assert dom.find(cls="warning") == []
    assert "Compare the two first rows" in card.content()


@pytest.mark.parametrize("change, expected", [
    (lambda c: setattr(c.model_card, "demonstration", True), "DEMONSTRATION model."),
    (lambda c: setattr(c, "model_card", None), "Nothing is known about this model"),
    (lambda c: setattr(c.model_card, "domain", "unknown"), "kinds of conversations"),
])
def test_a_warning_box_when_the_model_may_not_suit_the_input(conversation, parse_page,
                                                            change, expected):
    changed = copy.deepcopy(conversation)
    change(changed)
    dom = parse_page(render_report(changed, figures=False))
    (warning,) = [e for e in dom.find(cls="warning") if e.inside("model-card")]
    assert warning.content().startswith("Warning: ")
    assert expected.replace("kinds of", "kind of") in warning.content()


def test_a_report_beside_the_recording_plays_each_utterances_span(example_conversation,
                                                                 tmp_path, parse_page):
    from hotspot_erc.features.synth_media import silence, write_wav

    conversation = example_conversation()
    recording = tmp_path / "media" / "call one.wav"  # a space: the URL must quote it
    recording.parent.mkdir()
    write_wav(recording, silence(1.0))
    conversation.media = {"audio": str(recording)}
    page = write_report(conversation, tmp_path / "out", figures=False).read_text()
    players = parse_page(page).find("audio")
    timed = [u for u in conversation.utterances if u.start is not None and u.end is not None]
    assert len(players) == len(timed) > 0
    first = timed[0]
    assert players[0].attrs["src"] == (f"../media/call%20one.wav#t={first.start:.2f},"
                                       f"{first.end:.2f}")
    assert "controls" in players[0].attrs and players[0].attrs["preload"] == "none"
    [policy] = [m.attrs["content"] for m in parse_page(page).find("meta")
                if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy.startswith("default-src 'none'") and "media-src 'self' file:" in policy
    # Served pages and missing files get no player, and keep the strict policy.
    assert "<audio" not in render_report(conversation, figures=False)
    conversation.media = {"audio": str(tmp_path / "gone.wav")}
    page = write_report(conversation, tmp_path / "out2", figures=False).read_text()
    assert "<audio" not in page and "media-src" not in page
