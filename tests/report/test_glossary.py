from hotspot_erc.model.aligners import EXPERT_KINDS
from hotspot_erc.report.conversation import HOTSPOT_MIN_WEIGHT
from hotspot_erc.report.glossary import EXPERTS, TERMS, expert_tip


def test_every_expert_the_model_names_is_explained():
    assert tuple(EXPERTS) == EXPERT_KINDS
    assert all(expert_tip(name) == EXPERTS[name] for name in EXPERT_KINDS)
    assert "no description" in expert_tip("mystery")


def test_the_terms_of_the_cards_are_defined_in_plain_words():
    for term in ("gate", "prior", "hotspot", "hotspot weight", "aligner", "score"):
        assert len(TERMS[term].split()) >= 12, term
    assert f"reaches {HOTSPOT_MIN_WEIGHT:g}" in TERMS["hotspot"]
