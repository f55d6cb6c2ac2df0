"""Three literal subscribers and four offers worked through rules, re-ranking, reasons and
arms by hand (tests/offers/test_selection.py), reused at scale by the publish passes' tests."""
import numpy as np
import pandas as pd

from telcorec.core import config
from telcorec.core.columns import Col
from telcorec.models.scoring import PopularityScorer
from telcorec.offers import selection
from telcorec.offers.rerank import OfferTerms

K = 2
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1", "O2", "O3"], Col.OFFER_IDX: [0, 1, 2, 3],
    Col.PRICE: [10.0, 20.0, 30.0, 40.0], Col.DATA_GB: [1.0, 5.0, 20.0, 50.0],
    Col.PLAN_TYPE: ["residential", "residential", "business", "premium"],
    Col.PAYMENT_TYPE: ["prepaid", "postpaid", "postpaid", "prepaid"],
    Col.NETWORK: ["4G", "4G", "5G", "5G"], Col.FAMILY: ["no", "yes", "no", "no"],
    Col.PRICE_TIER: ["budget", "standard", "premium", "luxury"],
    Col.DATA_TIER: ["light", "medium", "medium", "heavy"],
    Col.OFFER_VALUE: [0.1, 0.25, 0.66, 1.25],
})
COLUMNS = (f"{Col.SUBSCRIBER_ID} string, {Col.SEGMENT} string, {Col.PAYMENT_TYPE} string, "
           f"{Col.HOUSEHOLD} string, {Col.CURRENT_OFFER_ID} string, {Col.HAS_HISTORY} boolean, "
           f"{Col.CHURN_PROBABILITY} double, {Col.DATA_GB_MONTH} double, "
           f"{Col.EXCLUDE_IDX} array<int>, {Col.FATIGUE_IDX} array<int>, {Col.ARM} string, "
           f"{Col.SHARD} int, {Col.TENURE_DAYS} int")
ROWS = [
    # prepaid: only O3 survives (O0 current plan, O1 and O2 postpaid)
    ("A", "youth", "prepaid", "single", "O0", True, 0.5, 18.2, [0], [], "model", 0, 400),
    # cold start (warm route, 20 days): O1 family bundle for a single, O3 shown recently
    ("B", "business", "postpaid", "single", None, False, None, None, [], [3], "model", 0, 20),
    # control arm: the baseline's order; O1 current plan, O2 business plan
    ("C", "family", "postpaid", "family", "O1", True, 0.1, 3.0, [1], [], "control", 0, 900),
]
MODEL = PopularityScorer(list(OFFERS[Col.OFFER_ID]), np.array([1.0, 4.0, 3.0, 2.0]),
                         name="stub", version="stub-1")
BASELINE = PopularityScorer(list(OFFERS[Col.OFFER_ID]), np.array([9.0, 1.0, 5.0, 7.0]),
                            version="popularity-1")


def literal_batch():
    names = [c.split()[0] for c in COLUMNS.split(", ")]
    batch = pd.DataFrame(ROWS, columns=names)
    for c in (Col.EXCLUDE_IDX, Col.FATIGUE_IDX):
        batch[c] = batch[c].map(lambda a: np.asarray(a, dtype=np.int64))
    return batch


def make_selection(depth=K):
    cfg = config.load("conf/base.yaml")
    return selection.Selection(MODEL, BASELINE, OFFERS, OfferTerms.from_offers(OFFERS),
                               cfg.rules.eligibility, cfg.rerank, cfg.experiment.control, None,
                               cfg.reasons.top_pairs, depth, cfg.cold_start)
