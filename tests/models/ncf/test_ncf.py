"""NCF: networks, negative sampler, feature codes, Petastorm shards, checkpoints, scorer, and
the scorer under the sampled-99 metric (against slow, obvious references)."""
import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import functions as F
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.core.exceptions import ModelError
from telcorec.evaluation import sampled_protocol
from telcorec.models import sampled_ranking
from telcorec.models.encoding import Vocabulary
from telcorec.models.ncf import examples, feed, trainer
from telcorec.models.ncf.codes import pandas_codes, spark_codes
from telcorec.models.ncf.model import NCFRecommender, pretrained_neumf
from telcorec.models.ncf.scorer import NCFScorer
from telcorec.models.scoring import PopularityScorer, rank_frame, recommend

N_USERS, N_ITEMS, USER_TOKENS, ITEM_TOKENS = 30, 9, 7, 5


def make_model(kind, seed=0, subscriber_ids=True, features=True):
    return NCFRecommender(kind=kind, n_users=N_USERS, n_items=N_ITEMS,
                          n_user_tokens=USER_TOKENS if features else 0,
                          n_item_tokens=ITEM_TOKENS if features else 0, embedding_dim=8,
                          mlp_layers=(16, 8, 4), subscriber_ids=subscriber_ids, seed=seed)


def random_inputs(n, seed=0, slots=3):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, N_USERS, n), rng.integers(0, USER_TOKENS + 1, (n, slots)),
            rng.integers(0, N_ITEMS, n), rng.integers(0, ITEM_TOKENS + 1, (n, 2)))


def as_tensors(*arrays):
    return [torch.as_tensor(a) for a in arrays]


# ---- networks and the model contract -------------------------------------------------------

@pytest.mark.parametrize("kind", ["gmf", "mlp", "neumf"])
@pytest.mark.parametrize("features", [True, False])
def test_output_shapes(kind, features):
    model = make_model(kind, features=features)
    users, ucodes, items, icodes = random_inputs(11)
    if features:
        logits = model.network(*as_tensors(users, ucodes, items, icodes))
    else:
        logits = model.network(torch.as_tensor(users), None, torch.as_tensor(items), None)
    assert logits.shape == (11,) and logits.dtype == torch.float32
    item_codes = np.random.default_rng(1).integers(0, ITEM_TOKENS + 1, (N_ITEMS, 2))
    scores = model.scores(users[:4], ucodes[:4] if features else None,
                          item_codes if features else None)
    assert scores.shape == (4, N_ITEMS) and np.isfinite(scores).all()


def test_batched_scores_equal_pair_by_pair_forward():
    model = make_model("neumf")
    users, ucodes, _, _ = random_inputs(5)
    item_codes = np.random.default_rng(1).integers(0, ITEM_TOKENS + 1, (N_ITEMS, 2))
    got = model.scores(users, ucodes, item_codes)
    model.network.eval()
    torch.set_grad_enabled(False)
    for i in range(5):
        for j in range(N_ITEMS):
            one = model.network(torch.tensor([users[i]]), torch.as_tensor(ucodes[i:i + 1]),
                                torch.tensor([j]), torch.as_tensor(item_codes[j:j + 1]))
            assert got[i, j] == pytest.approx(float(one), abs=1e-6)
    torch.set_grad_enabled(True)


def test_unseen_and_unknown_subscribers_are_scored_from_features_alone():
    model = make_model("gmf")
    seen = np.ones(N_USERS, dtype=bool)
    seen[[3, 4]] = False
    model.mark_seen(seen)
    codes = np.array([[1, 2, 0]] * 4)
    item_codes = np.zeros((N_ITEMS, 2), dtype=int)
    s = model.scores(np.array([3, 4, N_USERS + 10, 5]), codes, item_codes)
    np.testing.assert_array_equal(s[0], s[1])  # both unseen, same features
    np.testing.assert_array_equal(s[0], s[2])  # beyond the table: same as unseen
    assert not np.array_equal(s[0], s[3])      # seen: its ID embedding counts
    no_ids = make_model("gmf", subscriber_ids=False)
    assert no_ids.network.user.ids is None
    np.testing.assert_array_equal(no_ids.scores(np.array([0, 7]), codes[:2], item_codes)[0],
                                  no_ids.scores(np.array([0, 7]), codes[:2], item_codes)[1])


def test_same_seed_same_weights_and_params_are_reported():
    a, b = make_model("mlp", seed=3), make_model("mlp", seed=3)
    for (name, x), (_, y) in zip(a.network.state_dict().items(), b.network.state_dict().items()):
        assert torch.equal(x, y), name
    assert not torch.equal(make_model("mlp", seed=4).network.tower[0].weight,
                           a.network.tower[0].weight)
    assert a.get_params() == {"kind": "mlp", "n_users": N_USERS, "n_items": N_ITEMS,
                              "n_user_tokens": USER_TOKENS, "n_item_tokens": ITEM_TOKENS,
                              "embedding_dim": 8, "mlp_layers": [16, 8, 4],
                              "subscriber_ids": True, "seed": 3}


def test_pretrained_neumf_is_the_alpha_mix_of_gmf_and_mlp():
    gmf, mlp = make_model("gmf", seed=1), make_model("mlp", seed=2)
    for model in (gmf, mlp):  # move off the initialisation so the check is not trivial
        with torch.no_grad():
            model.network.out.bias.fill_(0.3)
    neumf = pretrained_neumf(gmf, mlp, alpha=0.3, seed=0)
    args = as_tensors(*random_inputs(20))
    for net in (gmf.network, mlp.network, neumf.network):
        net.eval()
    expected = 0.3 * gmf.network(*args) + 0.7 * mlp.network(*args)
    torch.testing.assert_close(neumf.network(*args), expected, rtol=1e-5, atol=1e-6)


# ---- checkpoints and artifacts -------------------------------------------------------------

def test_save_load_round_trip_gives_identical_scores_and_refuses_tampering(tmp_path):
    model = make_model("neumf", seed=5)
    seen = np.ones(N_USERS, dtype=bool)
    seen[0] = False
    model.mark_seen(seen)
    users, ucodes, _, _ = random_inputs(8)
    item_codes = np.random.default_rng(2).integers(0, ITEM_TOKENS + 1, (N_ITEMS, 2))
    model.save(tmp_path / "m", {"model": "ncf_neumf"})
    loaded, meta = NCFRecommender.load(tmp_path / "m")
    assert meta["model"] == "ncf_neumf" and meta["params"] == model.get_params()
    np.testing.assert_array_equal(loaded.scores(users, ucodes, item_codes),
                                  model.scores(users, ucodes, item_codes))
    assert not bool(loaded.network.gmf.user.seen[0])
    weights = tmp_path / "m" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="checksum"):
        NCFRecommender.load(tmp_path / "m")
    with pytest.raises(ModelError, match="run the ncf stage"):
        NCFRecommender.load(tmp_path / "missing")


def test_trainer_checkpoint_loads_with_weights_only(tmp_path):
    model = make_model("mlp")
    optimizer = torch.optim.Adam(model.network.parameters(), lr=0.01)
    users, ucodes, items, icodes = random_inputs(16)
    batch = {"subscriber_idx": torch.as_tensor(users), "offer_idx": torch.as_tensor(items),
             "label": torch.ones(16), "user_codes": torch.as_tensor(ucodes)}
    from telcorec.models.ncf.model import train_step
    train_step(model.network, optimizer, batch,
               torch.as_tensor(np.zeros((N_ITEMS, 2), dtype=np.int64)))
    trainer._atomic_save({"fingerprint": "f", "model": model.network.state_dict(),
                          "optimizer": optimizer.state_dict(), "epoch": 0, "best_epoch": 0,
                          "best_hr": 0.5, "history": [{"epoch": 1, "loss": 0.7}]},
                         tmp_path / trainer.LAST)
    back = torch.load(tmp_path / trainer.LAST, weights_only=True)
    restored = make_model("mlp", seed=9)
    restored.network.load_state_dict(back["model"])
    fresh_opt = torch.optim.Adam(restored.network.parameters(), lr=0.01)
    fresh_opt.load_state_dict(back["optimizer"])
    assert back["history"] == [{"epoch": 1, "loss": 0.7}]
    np.testing.assert_array_equal(restored.scores(users, ucodes, np.zeros((N_ITEMS, 2), int)),
                                  model.scores(users, ucodes, np.zeros((N_ITEMS, 2), int)))


def test_divergence_names_the_fix():
    model = make_model("gmf")
    spec = trainer.TrainSpec(model_params=model.get_params(), epochs=1, batch_size=2,
                             learning_rate=0.5, seed=0, converters=(), steps_per_epoch=1,
                             code_columns=(), checkpoint_dir="x", fingerprint="f")
    with torch.no_grad():
        model.network.out.weight[0, 0] = float("nan")
    with pytest.raises(ModelError, match="Decrease ncf.learning_rate"):
        trainer._check_finite(0.5, model.network, 0, spec)
    with pytest.raises(ModelError, match="diverged at epoch 3"):
        trainer._check_finite(float("nan"), make_model("gmf").network, 2, spec)


# ---- the negative sampler (Spark) ----------------------------------------------------------

def reference_nth_free(held, r):
    return [o for o in range(100) if o not in set(held)][r]


def test_drawn_negative_is_the_rth_free_offer_of_the_reference():
    rng = np.random.default_rng(0)
    held = [sorted(rng.choice(20, size=rng.integers(0, 10), replace=False).tolist())
            for _ in range(60)]
    batch = pd.DataFrame({Col.SUBSCRIBER_IDX: np.arange(60), examples.HELD: held,
                          "_positives": [[int(rng.integers(0, 20))] for _ in range(60)]})
    got = examples.draw_batch(batch, 20, 3, seed=5, epoch=1)
    keys = examples.draw_keys(5, 1, got[Col.SUBSCRIBER_IDX].to_numpy(),
                              got["_positive"].to_numpy(), got[examples.DRAW].to_numpy())
    free = 20 - np.array([len(held[u]) for u in got[Col.SUBSCRIBER_IDX]])
    r = (keys % free.astype(np.uint64)).astype(np.int64)
    expected = [reference_nth_free(held[u], int(x))
                for u, x in zip(got[Col.SUBSCRIBER_IDX], r)]
    assert got[Col.OFFER_IDX].tolist() == expected
    assert len(got) == 3 * 60


def sampler_inputs(spark, partitions):
    rng = np.random.default_rng(1)
    rows = [(u, int(o)) for u in range(40) for o in rng.choice(10, size=rng.integers(1, 5),
                                                               replace=False)]
    rows.append((99, 0))
    rows += [(98, o) for o in range(10)]  # holds every offer: no negative can be drawn
    pairs = spark.createDataFrame(rows, f"{Col.SUBSCRIBER_IDX} long, {Col.OFFER_IDX} int")
    pairs = pairs.repartition(partitions)
    return pairs, examples.held_offers(pairs), rows


def collect_negatives(df):
    return sorted((r[Col.SUBSCRIBER_IDX], r["_positive"], r[examples.DRAW], r[Col.OFFER_IDX])
                  for r in df.collect())


def test_sampler_never_samples_a_held_offer_and_draws_n_per_positive(spark):
    pairs, held, rows = sampler_inputs(spark, 3)
    got = collect_negatives(examples.sample_negatives(pairs, held, 10, 4, seed=7, epoch=0))
    holds = {}
    for u, o in rows:
        holds.setdefault(u, set()).add(o)
    assert all(neg not in holds[u] and 0 <= neg < 10 for u, _, _, neg in got)
    expected_positives = [(u, o) for u, o in rows if u != 98]
    assert len(got) == 4 * len(expected_positives)
    assert sorted({(u, p) for u, p, _, _ in got}) == sorted(expected_positives)
    # every offer a subscriber does not hold comes out, about equally often
    many = collect_negatives(examples.sample_negatives(pairs, held, 10, 900, seed=7, epoch=0))
    counts = np.bincount([neg for u, _, _, neg in many if u == 99], minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 60 and counts.sum() == 900


def test_sampler_is_seeded_and_independent_of_partitioning(spark):
    a_pairs, a_held, _ = sampler_inputs(spark, 1)
    b_pairs, b_held, _ = sampler_inputs(spark, 7)
    a = collect_negatives(examples.sample_negatives(a_pairs, a_held, 10, 4, seed=7, epoch=2))
    b = collect_negatives(examples.sample_negatives(b_pairs, b_held, 10, 4, seed=7, epoch=2))
    assert a == b
    other_seed = collect_negatives(examples.sample_negatives(a_pairs, a_held, 10, 4, 8, 2))
    other_epoch = collect_negatives(examples.sample_negatives(a_pairs, a_held, 10, 4, 7, 3))
    assert a != other_seed and a != other_epoch


def test_epoch_examples_label_and_feature_columns(spark):
    pairs, held, rows = sampler_inputs(spark, 2)
    codes = spark.createDataFrame([(u, u % 3, 1) for u in range(100)],
                                  f"{Col.SUBSCRIBER_IDX} long, u_0 int, u_1 int")
    df = examples.epoch_examples(pairs, held, codes, 10, 2, seed=1, epoch=0, files=2)
    assert df.columns == [Col.SUBSCRIBER_IDX, Col.OFFER_IDX, examples.LABEL, "u_0", "u_1"]
    assert df.rdd.getNumPartitions() == 2
    got = df.toPandas()
    assert (got[examples.LABEL] == 1).sum() == len(rows)
    assert (got[examples.LABEL] == 0).sum() == 2 * (len(rows) - 10)
    assert (got["u_0"] == got[Col.SUBSCRIBER_IDX] % 3).all()


def test_validation_takes_the_latest_training_offer_of_multi_offer_subscribers(spark):
    d = dt.date
    pairs = spark.createDataFrame(
        [(1, 0, d(2024, 1, 1)), (1, 1, d(2025, 1, 1)), (2, 2, d(2024, 1, 1)),
         (3, 0, d(2023, 1, 1)), (3, 4, d(2022, 1, 1)), (4, 5, d(2021, 1, 1))],
        f"{Col.SUBSCRIBER_IDX} long, {Col.OFFER_IDX} int, {Col.EVENT_DATE} date")
    train, validation = examples.validation_split(pairs, 10, seed=0)
    assert sorted(map(tuple, validation.collect())) == [(1, 1), (3, 0)]
    assert sorted(map(tuple, train.collect())) == [(1, 0), (2, 2), (3, 4), (4, 5)]
    _, one = examples.validation_split(pairs, 1, seed=0)
    assert one.count() == 1


# ---- feature codes -------------------------------------------------------------------------

def test_spark_and_pandas_codes_agree(spark):
    vocab = Vocabulary(("segment", "region"), ("region=North", "region=South", "segment=youth"))
    frame = pd.DataFrame({"segment": ["youth", "senior", None], "region": ["South", "North",
                                                                          "East"]})
    df = spark.createDataFrame(frame, "segment string, region string")
    from_spark = np.array([list(r) for r in df.select(*spark_codes(vocab)).collect()])
    expected = np.array([[3, 2], [0, 1], [0, 0]])
    np.testing.assert_array_equal(from_spark, expected)
    np.testing.assert_array_equal(pandas_codes(frame, vocab), expected)


# ---- the Petastorm feed --------------------------------------------------------------------

def test_loader_gives_disjoint_shards_that_cover_the_data(spark, tmp_path):
    feed.use_cache_under(spark, tmp_path)
    n = 1000
    df = (spark.range(n).select(F.col("id").cast("int").alias(Col.SUBSCRIBER_IDX),
                                F.lit(0).cast("int").alias(Col.OFFER_IDX),
                                F.lit(1.0).cast("float").alias(examples.LABEL))
          .repartition(6, Col.SUBSCRIBER_IDX))
    converter = feed.make_converter(df)
    try:
        groups = feed.row_group_rows(converter.file_urls)
        assert sum(groups) == n and len(groups) == 6
        shards = []
        for rank in range(2):
            with feed.shard_batches(converter, 64, rank, 2, seed=3) as batches:
                shards.append(np.concatenate([b[Col.SUBSCRIBER_IDX].numpy() for b in batches]))
        assert not set(shards[0]) & set(shards[1])
        assert sorted(np.concatenate(shards).tolist()) == list(range(n))
        steps = feed.steps_per_epoch(groups, 2, 64)
        assert steps * 64 <= min(len(s) for s in shards)
    finally:
        converter.delete()


@pytest.mark.parametrize("seed", range(5))
def test_steps_per_epoch_never_exceed_any_petastorm_shard(seed):
    rng = random.Random(seed)
    groups = [rng.randint(1, 500) for _ in range(rng.randint(3, 12))]
    world = rng.randint(1, 3)
    batch = rng.randint(1, 50)
    try:
        steps = feed.steps_per_epoch(groups, world, batch)
    except ValueError:
        return
    for _ in range(200):  # petastorm: optionally shuffled row groups, then index % world
        order = list(range(len(groups)))
        rng.shuffle(order)
        shard_rows = [sum(groups[g] for i, g in enumerate(order) if i % world == r)
                      for r in range(world)]
        assert steps * batch <= min(shard_rows)


def test_steps_per_epoch_refuses_too_few_groups_or_rows():
    with pytest.raises(ValueError, match="Lower ncf.processes"):
        feed.steps_per_epoch([100], 2, 10)
    with pytest.raises(ValueError, match="lower ncf.batch_size"):
        feed.steps_per_epoch([5, 5], 2, 10)
    assert feed.file_count(10, 2) == 2 and feed.file_count(5_000_000, 2, 1_000_000) == 6


# ---- scoring on executors ------------------------------------------------------------------

SUB_COLS = ("segment", "region")
USER_VOCAB = Vocabulary(SUB_COLS, ("region=North", "region=South", "segment=family",
                                   "segment=senior", "segment=youth", "x=1", "y=2"))


def scorer_and_batch(seed=0):
    model = make_model("neumf", seed=seed)
    rng = np.random.default_rng(seed)
    item_codes = rng.integers(0, ITEM_TOKENS + 1, (N_ITEMS, 2))
    meta = {"model": "ncf_neumf", "model_version": "ncf_neumf-test",
            "offer_ids": [f"O{i}" for i in range(N_ITEMS)],
            "user_vocabulary": USER_VOCAB.to_json(), "item_codes": item_codes.tolist()}
    batch = pd.DataFrame({
        Col.SUBSCRIBER_ID: [f"S{i:03d}" for i in range(40)],
        Col.SUBSCRIBER_IDX: np.arange(40, dtype=np.int64),  # 30.. are beyond the table
        "segment": rng.choice(["youth", "family", "senior", "other"], 40),
        "region": rng.choice(["North", "South"], 40),
        Col.EXCLUDE_IDX: [rng.choice(N_ITEMS, size=rng.integers(0, 3), replace=False)
                          .astype(np.int32) for _ in range(40)]})
    return model, NCFScorer.from_model(model, meta), batch, item_codes


def test_scorer_matches_the_model(tmp_path):
    model, scorer, batch, item_codes = scorer_and_batch()
    expected = model.scores(batch[Col.SUBSCRIBER_IDX].to_numpy(),
                            pandas_codes(batch, USER_VOCAB), item_codes)
    np.testing.assert_array_equal(scorer.score(batch), expected)
    model.save(tmp_path / "m", {"model": "ncf_neumf", "model_version": "v",
                                "offer_ids": scorer.offer_ids,
                                "user_vocabulary": USER_VOCAB.to_json(),
                                "item_codes": item_codes.tolist()})
    np.testing.assert_array_equal(NCFScorer.load(tmp_path / "m").score(batch), expected)


def test_scorer_without_subscriber_ids_needs_no_index():
    model = make_model("gmf", subscriber_ids=False)
    meta = {"model": "ncf_gmf", "model_version": "v", "offer_ids": [str(i) for i in range(9)],
            "user_vocabulary": USER_VOCAB.to_json(), "item_codes": np.zeros((9, 2)).tolist()}
    _, _, batch, _ = scorer_and_batch()
    scorer = NCFScorer.from_model(model, meta)
    np.testing.assert_array_equal(scorer.score(batch.drop(columns=[Col.SUBSCRIBER_IDX])),
                                  scorer.score(batch))
    with_ids = NCFScorer.from_model(make_model("gmf"), meta)
    with pytest.raises(ValueError, match="join subscriber_index"):
        with_ids.score(batch.drop(columns=[Col.SUBSCRIBER_IDX]))


def test_scorer_on_executors_equals_local_ranking(spark):
    _, scorer, batch, _ = scorer_and_batch(seed=1)
    schema = T.StructType([
        T.StructField(Col.SUBSCRIBER_ID, T.StringType()),
        T.StructField(Col.SUBSCRIBER_IDX, T.LongType()),
        T.StructField("segment", T.StringType()), T.StructField("region", T.StringType()),
        T.StructField(Col.EXCLUDE_IDX, T.ArrayType(T.IntegerType()))])
    exclude = batch[Col.EXCLUDE_IDX].map(lambda a: [int(x) for x in a])
    df = spark.createDataFrame(batch.assign(**{Col.EXCLUDE_IDX: exclude}), schema).repartition(3)
    remote = recommend(df, scorer, 4).toPandas()
    local = rank_frame(batch, scorer, 4)
    key = [Col.SUBSCRIBER_ID, Col.RANK]
    pd.testing.assert_frame_equal(remote.sort_values(key).reset_index(drop=True),
                                  local.sort_values(key).reset_index(drop=True),
                                  check_dtype=False, rtol=1e-6)


# ---- the sampled-99 protocol with an NCF scorer (the protocol itself: test_sampled_protocol) -

def test_sampled_metrics_on_executors_equal_local(spark):
    _, scorer, batch, _ = scorer_and_batch(seed=2)
    rng = np.random.default_rng(0)
    batch = batch.drop(columns=[Col.EXCLUDE_IDX]).assign(**{
        sampled_protocol.TEST_OFFER_IDX: rng.integers(0, N_ITEMS, 40),
        sampled_protocol.HELD_IDX: [[int(rng.integers(0, N_ITEMS))] for _ in range(40)]})
    batch = batch[batch[sampled_protocol.TEST_OFFER_IDX]
                  != batch[sampled_protocol.HELD_IDX].str[0]]

    def local(s):
        ranks = sampled_protocol.per_subscriber(batch, s, 5, 4)[sampled_protocol.TEST_RANK]
        hit, ndcg = sampled_ranking.hit_and_ndcg(ranks.to_numpy(), 3)
        return hit.mean(), ndcg.mean()

    df = spark.createDataFrame(batch, "subscriber_id string, subscriber_idx long, "
                               "segment string, region string, test_offer_idx long, "
                               "held_idx array<int>")
    segments = spark.createDataFrame(batch[[Col.SUBSCRIBER_ID]].assign(segment="one"))
    popular = PopularityScorer(scorer.offer_ids, np.arange(N_ITEMS, dtype=float))
    both = sampled_protocol.sampled_metrics(df.repartition(3), [scorer, popular], segments, 5,
                                            4, (3,))
    assert set(both) == {"ncf_neumf", "popularity"}
    assert ("hr", 3, "all", pytest.approx(local(popular)[0])) in both["popularity"]
    hr, ndcg = local(scorer)
    assert sorted(both["ncf_neumf"]) == sorted([
        ("hr", 3, "all", pytest.approx(hr)), ("ndcg", 3, "all", pytest.approx(ndcg)),
        ("hr", 3, "one", pytest.approx(hr)), ("ndcg", 3, "one", pytest.approx(ndcg))])
