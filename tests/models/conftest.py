"""Builders for the model contract suite: tiny generated data and every model trained on it once.

`models` (session-scoped) trains each model of the contract on a few hundred generated
subscribers: LightFM (every loss and the deep preset, features and features+history), NCF
(GMF, MLP, NeuMF with subscriber IDs and features), both ensembles, the baselines and the
cold-start blend the score stage serves. The
suite (test_contract.py) then checks properties of each, reusing the trained models.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from telcorec.core.columns import OFFER_CATEGORICALS, SUBSCRIBER_CATEGORICALS, Col
from telcorec.core.config import (
    ColdStartConfig,
    EarlyStoppingConfig,
    TrainConfig,
    model_name,
    variant_model_name,
)
from telcorec.evaluation.offline import OracleScorer, RandomScorer
from telcorec.features.stats import PRICE_TIERS, VALUE_TIERS
from telcorec.models.encoding import Vocabulary
from telcorec.models.lightfm import training
from telcorec.models.ncf.codes import pandas_codes
from telcorec.models.ncf.model import NCFRecommender
from telcorec.models.ncf.scorer import NCFScorer
from telcorec.models.scoring import PopularityScorer, ensemble_of, load_saved
from telcorec.offers.cold_start import ColdStartBlend, ContentScorer
from telcorec.synthetic.catalogue import build_catalogue

SUBSCRIBERS, OFFERS, SHARDS, SEED = 300, 12, 2, 7
RUN = dt.date(2026, 11, 1)
LIGHTFM_VARIANTS = ("warp", "bpr", "warp-kos", "logistic", "deep")
REPRESENTATIONS = {"features": "features", "history": "features+history"}
NCF_KINDS = ("gmf", "mlp", "neumf")
# the members of both ensembles: two LightFM variants and an NCF model (one offer order)
ENSEMBLE_MEMBERS = {"lightfm_warp/history": 1.5, "lightfm_bpr/history": 1.0, "ncf_neumf": 1.2}
BASELINES = ("popularity", "random", "oracle", "content")
SERVED = "lightfm_warp/history"  # the model `cold_start_blend` wraps, as the score stage does
CATEGORIES = {"segment": ("youth", "family", "business", "professional", "senior"),
              "device_tier": ("basic", "mid", "flagship"),
              "payment_type": ("prepaid", "postpaid")}


def offers_frame() -> pd.DataFrame:
    """Offer rows in offer_idx order: the generated catalogue plus price and data tiers."""
    offers = build_catalogue(OFFERS, SEED)
    offers[Col.OFFER_IDX] = np.arange(len(offers), dtype=np.int32)
    offers[Col.PRICE_TIER] = pd.qcut(offers[Col.PRICE], 4, labels=list(PRICE_TIERS)).astype(str)
    offers[Col.DATA_TIER] = pd.qcut(offers[Col.DATA_GB].rank(method="first"), 3,
                                    labels=["low", "mid", "high"]).astype(str)
    return offers


def subscribers_frame(n: int = SUBSCRIBERS, seed: int = SEED) -> pd.DataFrame:
    """Subscriber rows with every column a model or baseline reads (features, the generator's
    truth, cold-start content columns), a shard and a subscriber_idx."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({Col.SUBSCRIBER_ID: [f"S{i:04d}" for i in range(n)]})
    for column in SUBSCRIBER_CATEGORICALS:
        values = CATEGORIES.get(column, ("low", "mid", "high"))
        frame[column] = rng.choice(values, n)
    frame[Col.HOUSEHOLD_SIZE] = rng.integers(1, 6, n)
    frame[Col.DATA_NEED_GB] = rng.gamma(2.0, 5.0, n)
    frame[Col.VOICE_NEED_MIN] = rng.gamma(2.0, 150.0, n)
    frame[Col.SMS_NEED] = rng.gamma(1.0, 50.0, n)
    frame[Col.PRICE_SENSITIVITY] = rng.uniform(0.2, 2.0, n)
    frame[Col.PERSONA] = rng.integers(-1, 6, n)
    frame[Col.DATA_GB_MONTH] = frame[Col.DATA_NEED_GB] * rng.uniform(0.5, 1.5, n)
    frame[Col.VALUE_TIER] = rng.choice(VALUE_TIERS, n)
    frame[Col.TENURE_DAYS] = rng.integers(0, 400, n)  # new, warm and established (cold start)
    frame[Col.SHARD] = np.arange(n, dtype=np.int32) % SHARDS
    frame[Col.SUBSCRIBER_IDX] = np.arange(n, dtype=np.int64)
    return frame


def holdings(subscribers: pd.DataFrame, offers: pd.DataFrame) -> pd.DataFrame:
    """1-3 offers per subscriber, drawn by the generator's utility plus Gumbel noise."""
    rng = np.random.default_rng(SEED + 1)
    utility = OracleScorer(offers[Col.OFFER_ID].tolist(), offers).score(subscribers)
    noisy = utility + rng.gumbel(size=utility.shape)
    held = rng.integers(1, 4, len(subscribers))
    order = np.argsort(-noisy, axis=1)
    rows = [(s, int(o)) for s, k in enumerate(held) for o in order[s, :k]]
    codes, items = np.array(rows).T
    return pd.DataFrame({Col.SUBSCRIBER_ID: subscribers[Col.SUBSCRIBER_ID].to_numpy()[codes],
                         Col.SUBSCRIBER_IDX: codes.astype(np.int64),
                         Col.OFFER_IDX: items.astype(np.int32),
                         Col.WEIGHT: np.ones(len(codes), np.float32)})


def vocabulary(frame: pd.DataFrame, columns: tuple[str, ...],
               identity: str | None = None) -> Vocabulary:
    """The pandas twin of encoding.fit_vocabulary: sorted distinct "column=value" tokens."""
    tokens = {f"{c}={v}" for c in columns for v in frame[c].astype(str)}
    if identity is not None:
        tokens |= {f"id={v}" for v in frame[identity].astype(str)}
    return Vocabulary(tuple(columns), tuple(sorted(tokens)))


def with_history(subscribers: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The scoring batch: every subscriber with the offers they hold as history and exclusions."""
    held = pairs.groupby(Col.SUBSCRIBER_ID)[Col.OFFER_IDX].apply(
        lambda s: np.sort(s.to_numpy(np.int32)))
    out = subscribers.copy()
    lists = out[Col.SUBSCRIBER_ID].map(held)
    out[Col.HISTORY_IDX] = [np.empty(0, np.int32) if not isinstance(v, np.ndarray) else v
                            for v in lists]
    out[Col.EXCLUDE_IDX] = out[Col.HISTORY_IDX]
    return out


def train_lightfm(subscribers, offers, pairs, tmp_path, representation) -> dict:
    user_vocab = vocabulary(subscribers, SUBSCRIBER_CATEGORICALS)
    item_vocab = vocabulary(offers, OFFER_CATEGORICALS, identity=Col.OFFER_ID)
    base = TrainConfig()
    cfg = dataclasses.replace(
        base, shards=SHARDS, models=LIGHTFM_VARIANTS, representation=representation,
        lightfm=dataclasses.replace(base.lightfm, no_components=8, epochs=4),
        deep=dataclasses.replace(base.deep, no_components=16, epochs=4),  # the preset, smaller
        early_stopping=EarlyStoppingConfig(every=2, patience=1))
    rows = pairs.merge(subscribers[[Col.SUBSCRIBER_ID, Col.SHARD, *SUBSCRIBER_CATEGORICALS]],
                       on=Col.SUBSCRIBER_ID, how="inner")
    out = tmp_path / representation.replace("+", "_")
    names = training.fit_local(rows, offers, user_vocab, item_vocab, cfg, SEED, out, RUN)
    assert names == sorted(variant_model_name(v) for v in LIGHTFM_VARIANTS)
    return {name: load_saved(name, out / name) for name in names}


def train_ncf(subscribers, offers, pairs) -> dict:
    user_vocab = vocabulary(subscribers, SUBSCRIBER_CATEGORICALS)
    item_vocab = vocabulary(offers, OFFER_CATEGORICALS)
    item_codes = pandas_codes(offers, item_vocab)
    rng = np.random.default_rng(SEED)
    negatives = 4
    users = np.concatenate([pairs[Col.SUBSCRIBER_IDX].to_numpy()] * (1 + negatives))
    items = np.concatenate([pairs[Col.OFFER_IDX].to_numpy(np.int64),
                            rng.integers(0, OFFERS, len(pairs) * negatives)])
    labels = np.r_[np.ones(len(pairs)), np.zeros(len(pairs) * negatives)].astype(np.float32)
    examples = {"subscriber_idx": users.astype(np.int64), "offer_idx": items,
                "label": labels,
                "user_codes": pandas_codes(subscribers, user_vocab)[users]}
    out = {}
    for kind in NCF_KINDS:
        model = NCFRecommender(kind=kind, n_users=len(subscribers), n_items=OFFERS,
                               n_user_tokens=len(user_vocab), n_item_tokens=len(item_vocab),
                               embedding_dim=8, mlp_layers=(16, 8), subscriber_ids=True,
                               seed=SEED)
        model.fit(examples, item_codes, epochs=2, batch_size=256, learning_rate=0.01)
        # half the subscribers were never seen in training: scored from their features
        model.mark_seen(np.arange(len(subscribers)) < len(subscribers) // 2)
        name = model_name("ncf", kind)
        out[name] = NCFScorer.from_model(model, {
            "model": name, "model_version": f"{name}-test", "offer_ids":
            offers[Col.OFFER_ID].tolist(), "user_vocabulary": user_vocab.to_json(),
            "item_codes": item_codes.tolist()})
    return out


def baselines(offers, pairs, served_model) -> dict:
    """The baselines, and the cold-start blend of content rules and `served_model` that the
    score stage publishes (built from a loaded model at scoring time, never saved itself)."""
    offer_ids = offers[Col.OFFER_ID].tolist()
    counts = np.bincount(pairs[Col.OFFER_IDX], minlength=len(offer_ids)).astype(np.float64)
    cold_start = ColdStartConfig(segment_plan_types={"business": ("business",),
                                                     "family": ("residential",)})
    content = ContentScorer.from_offers(offers, cold_start)
    return {"popularity": PopularityScorer(offer_ids, counts),
            "random": RandomScorer(offer_ids, SEED),
            "oracle": OracleScorer(offer_ids, offers),
            "content": content,
            "cold_start_blend": ColdStartBlend(served_model, content, cold_start)}


@pytest.fixture(scope="session")
def contract_data() -> dict:
    offers = offers_frame()
    subscribers = subscribers_frame()
    pairs = holdings(subscribers, offers)
    return {"offers": offers, "subscribers": subscribers, "pairs": pairs,
            "batch": with_history(subscribers, pairs)}


@pytest.fixture(scope="session")
def models(contract_data, tmp_path_factory) -> dict:
    """Every model of the contract by its test id: lightfm_<loss>/<representation>, ncf_<kind>,
    ensemble_<mode>, and the baselines."""
    offers, subscribers, pairs = (contract_data[k] for k in ("offers", "subscribers", "pairs"))
    root = tmp_path_factory.mktemp("contract-models")
    out = {}
    for label, representation in REPRESENTATIONS.items():
        trained = train_lightfm(subscribers, offers, pairs, root, representation)
        out.update({f"{name}/{label}": scorer for name, scorer in trained.items()})
    out.update(train_ncf(subscribers, offers, pairs))
    members = [out[m] for m in ENSEMBLE_MEMBERS]
    for mode in ("weighted", "rrf"):
        name = model_name("ensemble", mode)
        out[name] = ensemble_of(name, members, list(ENSEMBLE_MEMBERS.values()), rrf_k=60)
    out.update(baselines(offers, pairs, out[SERVED]))
    return out


MODEL_IDS = ([f"{variant_model_name(v)}/{r}" for r in REPRESENTATIONS for v in LIGHTFM_VARIANTS]
             + [model_name("ncf", k) for k in NCF_KINDS]
             + [model_name("ensemble", m) for m in ("weighted", "rrf")] + list(BASELINES)
             + ["cold_start_blend"])


@pytest.fixture(scope="session", params=MODEL_IDS)
def model_id(request) -> str:
    """Each model of the contract in turn (its key in `models`)."""
    return request.param


@pytest.fixture
def rebuilt_baselines(contract_data, models, tmp_path) -> dict:
    """The baselines built again from the same data (they are rebuilt each run, not saved);
    the blend around the served model saved and loaded again."""
    model = models[SERVED]
    loaded = load_saved(model.name, model.save(tmp_path / "served"))
    return baselines(contract_data["offers"], contract_data["pairs"], loaded)


SPARK_TYPES = {"O": "string", "f": "double", "i": "bigint", "b": "boolean"}


def spark_frame(spark, batch: pd.DataFrame):
    """`batch` as a Spark DataFrame: offer index lists as array<int>, the rest by dtype."""
    arrays = (Col.HISTORY_IDX, Col.EXCLUDE_IDX)
    ddl = ", ".join(f"{c} array<int>" if c in arrays else f"{c} {SPARK_TYPES[batch[c].dtype.kind]}"
                    for c in batch.columns)
    rows = [tuple([int(x) for x in v] if c in arrays else (v.item() if hasattr(v, "item") else v)
                  for c, v in zip(batch.columns, row))
            for row in batch.itertuples(index=False)]
    return spark.createDataFrame(rows, ddl)


@pytest.fixture
def as_spark(spark):
    """`spark_frame` on the session's SparkSession."""
    return lambda batch: spark_frame(spark, batch)
