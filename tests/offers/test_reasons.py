"""Reason codes: exact top pairs of a hand-built model, the exact split of LightFM scores into
pair terms, readable templates and the list column."""
import numpy as np
import pandas as pd
import pyarrow as pa

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm.model import representations, scores
from telcorec.offers import reasons

SUBSCRIBER = {
    Col.SEGMENT: "youth", Col.REGION: "North", Col.DEVICE_TIER: "mid",
    Col.PAYMENT_TYPE: "postpaid", Col.TENURE_STAGE: "mature", Col.TENURE_MONTHS: 30,
    Col.DATA_INTENSITY: "high", Col.CALL_INTENSITY: "low", Col.SMS_INTENSITY: "low",
    Col.USAGE_STABILITY: "stable", Col.HOUSEHOLD: "single", Col.DATA_GB_MONTH: 18.2,
    Col.VOICE_MIN_MONTH: 95.0, Col.SMS_MONTH: None, Col.SHARD: 0,
}
OFFERS = pd.DataFrame({
    Col.OFFER_ID: ["O0", "O1"], Col.PLAN_TYPE: ["residential", "residential"],
    Col.PAYMENT_TYPE: ["postpaid", "prepaid"], Col.NETWORK: ["5G", "4G"],
    Col.FAMILY: ["no", "yes"], Col.PRICE: [29.99, 9.5], Col.DATA_GB: [30.0, 1.5],
    Col.PRICE_TIER: ["premium", "budget"], Col.DATA_TIER: ["heavy", "light"],
})
USER_VOCAB = Vocabulary(SUBSCRIBER_CATEGORICALS,
                        ("data_intensity=high", "household=single", "segment=youth"))
ITEM_VOCAB = Vocabulary(OFFER_CATEGORICALS, ("data_tier=heavy", "data_tier=light", "id=O0",
                                             "id=O1", "plan_type=residential"))
USER_EMB = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
ITEM_EMB = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 0.6], [0.0, -1.0], [0.0, 2.0]])


def explainer(user_vocab=USER_VOCAB, item_vocab=ITEM_VOCAB, embeddings=None):
    item_features = item_vocab.encode(OFFERS, identity=OFFERS[Col.OFFER_ID])
    return reasons.Explainer.build(user_vocab, item_vocab, item_features,
                                   embeddings or {0: (USER_EMB, ITEM_EMB)}, OFFERS)


def test_top_pairs_of_a_hand_built_model_read_as_templates():
    batch = pd.DataFrame([SUBSCRIBER])
    rows, offers = np.array([0, 0]), np.array([0, 1])
    slots = explainer().pair_reasons(batch, rows, offers, top=3)
    # O0: high x heavy 3, single x residential 2, youth x heavy 1.5 (all / 9: 1/3 x 1/3)
    # O1: single x residential 2, youth x residential 1; the rest are <= 0: no third reason
    assert [s.to_pylist() for s in slots] == [
        ["data_intensity=high x data_tier=heavy: uses 18 GB a month; plan gives 30 GB",
         "household=single x plan_type=residential: single household; residential plan"],
        ["household=single x plan_type=residential: single household; residential plan",
         "segment=youth x plan_type=residential: youth segment; residential plan"],
        ["segment=youth x data_tier=heavy: youth segment; plan gives 30 GB", None],
    ]


def test_pair_terms_add_up_to_the_lightfm_score_without_biases():
    rng = np.random.default_rng(0)
    batch = pd.DataFrame([{**SUBSCRIBER, Col.SHARD: s % 2,
                           Col.SEGMENT: ["youth", "senior", "family"][s % 3],
                           Col.DATA_INTENSITY: ["high", "low"][s % 2]} for s in range(6)])
    user_vocab = Vocabulary(SUBSCRIBER_CATEGORICALS, tuple(sorted(
        {f"{c}={batch[c][i]}" for c in SUBSCRIBER_CATEGORICALS for i in range(len(batch))})))
    embeddings = {s: (rng.normal(size=(len(user_vocab), 4)), rng.normal(size=(len(ITEM_VOCAB), 4)))
                  for s in (0, 1)}
    ex = explainer(user_vocab, ITEM_VOCAB, embeddings)
    rows, offers = np.repeat(np.arange(6), 2), np.tile([0, 1], 6)
    terms, _, _ = ex.pair_terms(batch, rows, offers)
    item_features = ITEM_VOCAB.encode(OFFERS, identity=OFFERS[Col.OFFER_ID])
    for shard, (users, items) in embeddings.items():
        mine = batch[Col.SHARD].to_numpy() == shard
        expected = scores(representations(user_vocab.encode(batch[mine]), users, np.zeros(len(users))),
                          representations(item_features, items, np.zeros(len(items))))
        got = terms.sum(axis=(1, 2)).reshape(6, 2)[mine]
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_phrases_say_unknown_instead_of_nan():
    batch = pd.DataFrame([{**SUBSCRIBER, Col.DATA_GB_MONTH: None, Col.HOUSEHOLD: None,
                           Col.TENURE_MONTHS: None}])
    phrases = dict(zip(SUBSCRIBER_CATEGORICALS, reasons.subscriber_phrases(batch)[0]))
    assert phrases[Col.DATA_INTENSITY] == "uses unknown data"
    assert phrases[Col.HOUSEHOLD] == "unknown household"
    assert phrases[Col.TENURE_STAGE] == "tenure unknown"
    assert phrases[Col.SMS_INTENSITY] == "sends unknown SMS"
    assert phrases[Col.CALL_INTENSITY] == "talks 95 min a month"
    offer = dict(zip(reasons.OFFER_TOKEN_COLUMNS, reasons.offer_phrases(OFFERS)[1]))
    assert offer == {Col.PLAN_TYPE: "residential plan", Col.PAYMENT_TYPE: "prepaid plan",
                     Col.NETWORK: "4G network", Col.FAMILY: "family bundle",
                     Col.PRICE_TIER: "costs 9.50 a month", Col.DATA_TIER: "plan gives 1.5 GB",
                     reasons.IDENTITY: "chosen by customers like this one"}


def test_slots_become_one_list_per_row_without_the_empty_ones():
    slots = [np.array(["a", None, "b"], dtype=object), reasons.marker(np.array([1, 0, 1], bool), "m")]
    got = reasons.as_list_array(slots, 3)
    assert got.to_pylist() == [["a", "m"], [], ["b", "m"]]
    assert got.type == pa.list_(pa.string())
    assert reasons.as_list_array([], 2).to_pylist() == [[], []]
