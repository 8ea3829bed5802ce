"""The paper zoo: every entry has a complete card and sources of a form the loader reads."""
from __future__ import annotations

import pytest

from bench.encoders.sources import check_source_form
from bench.encoders.zoo import PAPER_CARDS
from bench.report.published import PAPERS, load_paper
from bench.suites import get_suite

ZOO = get_suite("paper").encoders


@pytest.mark.parametrize("name", [entry.name for entry in ZOO])
def test_every_paper_encoder_has_a_card_and_well_formed_sources(name):
    card = PAPER_CARDS[name]
    assert card.architecture and card.resolution in (224, 256, 336) and card.method and card.source
    assert card.paper and card.protocol
    assert (card.eps is None) or (card.norm == "Linf" and card.eps.endswith("/255"))
    spec = ZOO.get(name).value
    for source in (spec.base, spec.vision):
        if source is not None:
            check_source_form(source)


def test_the_state_of_the_art_is_in_the_zoo():
    names = set(PAPER_CARDS)
    assert {"delta-clip-l14-224", "delta-clip-l14-336", "delta-clip-h14-336", "qt-aft-vit-b-16", "qt-aft-vit-l-14",
            "fare4-convnext-b", "tecoa4-convnext-b", "tecoa1-vit-b-32-openai", "fare4-vit-b-32-openai"} <= names
    assert sum(n.startswith("leaf-") for n in names) == 6
    assert {PAPER_CARDS[n].resolution for n in names if n.endswith("-336")} == {336}


def test_every_published_row_names_a_zoo_encoder():
    for paper in PAPERS:
        for table in load_paper(paper).tables:
            for group in table.groups:
                for row in group.rows:
                    assert row.encoder is None or row.encoder in ZOO, (paper, table.id, row.label)
