"""Cold-start routing by tenure and the content rule score, worked out by hand."""
import math

import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Col, Route
from telcorec.models.scoring import PopularityScorer
from telcorec.offers.cold_start import ColdStartBlend, ContentScorer, content_weights, routes

CFG = config.load("conf/base.yaml").cold_start  # with the shipped segment_plan_types
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1", "O2"],
    Col.PLAN_TYPE: ["residential", "business", "premium"],
    Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid"],
    Col.DATA_GB: [5.0, 20.0, 100.0],
    Col.PRICE_TIER: ["budget", "premium", "luxury"],
})


def subscribers(**columns):
    base = {Col.SEGMENT: ["youth"], Col.PAYMENT_TYPE: ["prepaid"], Col.DATA_GB_MONTH: [5.0],
            Col.VALUE_TIER: ["bronze"], Col.TENURE_DAYS: [3]}
    return pd.DataFrame({**base, **columns})


def test_routes_at_the_boundaries_and_unknown_tenure():
    got = routes(pd.Series([0, 7, 8, 30, 31, None, 4000]), CFG)
    assert list(got) == [Route.NEW, Route.NEW, Route.WARM, Route.WARM, Route.ESTABLISHED,
                         Route.ESTABLISHED, Route.ESTABLISHED]
    assert list(content_weights(got, CFG)) == [1.0, 1.0, 0.7, 0.7, 0.0, 0.0, 0.0]


def test_content_score_by_hand():
    content = ContentScorer.from_offers(OFFERS, CFG)
    got = content.score(subscribers())[0]
    # youth buys residential plans; prepaid; 5 GB use x 1.2 headroom = 6 (+1 = 7); bronze = 0
    data = [math.exp(-abs(math.log(gb / 7))) for gb in (6.0, 21.0, 101.0)]
    expected = [0.4 * (0.5 * 1 + 0.5 * 1) + 0.3 * data[0] + 0.3 * (1 - 0 / 3),
                0.4 * (0.5 * 0 + 0.5 * 0) + 0.3 * data[1] + 0.3 * (1 - 2 / 3),
                0.4 * (0.5 * 0 + 0.5 * 0) + 0.3 * data[2] + 0.3 * (1 - 3 / 3)]
    np.testing.assert_allclose(got, expected)
    assert got.argmax() == 0


def test_unknown_values_are_neutral():
    content = ContentScorer.from_offers(OFFERS, CFG)
    got = content.score(subscribers(**{Col.SEGMENT: ["martian"], Col.PAYMENT_TYPE: [None],
                                       Col.DATA_GB_MONTH: [None], Col.VALUE_TIER: ["unknown"]}))
    np.testing.assert_allclose(got, [[0.5] * 3])


@pytest.mark.parametrize("days, content_share", [(3, 1.0), (20, 0.7), (400, 0.0)])
def test_blend_by_route(days, content_share):
    model = PopularityScorer(list(OFFERS[Col.OFFER_ID]), np.array([0.0, 10.0, 5.0]))
    blend = ColdStartBlend(model, ContentScorer.from_offers(OFFERS, CFG), CFG)
    batch = subscribers(**{Col.TENURE_DAYS: [days]})
    got = blend.score(batch)[0]
    content = ContentScorer.from_offers(OFFERS, CFG).score(batch)[0]
    if content_share == 0.0:
        np.testing.assert_allclose(got, [0.0, 10.0, 5.0])  # the model's own scores
    else:
        model_share = np.array([0.0, 1.0, 0.5])  # min-max normalised per subscriber
        np.testing.assert_allclose(got, content_share * content
                                   + (1 - content_share) * model_share)
    assert (blend.name, blend.version) == (model.name, model.version)


def test_config_checks_name_the_key():
    with pytest.raises(Exception, match="cold_start.content"):
        config.from_dict({"cold_start": {"content": {"segment": 0.5, "data": 0.3, "price": 0.3}}})
    with pytest.raises(Exception, match="cold_start.new_days"):
        config.from_dict({"cold_start": {"new_days": 40, "warm_days": 30}})
