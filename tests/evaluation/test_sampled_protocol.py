"""The sampled-candidates protocol (sampled{N}) against slow, obvious references, on literal
rows, locally and on executors for the scorers the evaluate stage gives it."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from telcorec.core import config
from telcorec.core.columns import Col, Split
from telcorec.core.exceptions import ConfigError
from telcorec.evaluation import offline, sampled_protocol
from telcorec.models import sampled_ranking
from telcorec.models.scoring import PopularityScorer

N_OFFERS = 8
OFFER_IDS = [f"O{i}" for i in range(N_OFFERS)]


def reference_ranks(scores, subscribers, held, test, seed, negatives):
    """Slow and obvious: sort the free offers by their key, take the first `negatives`, rank
    the test offer among them by (-score, offer index); 0 = first."""
    n_offers = scores.shape[1]
    keys = sampled_ranking.offer_keys(seed, subscribers, n_offers)
    ranks = []
    for i in range(len(test)):
        free = [o for o in range(n_offers) if o not in set(held[i]) and o != test[i]]
        chosen = sorted(free, key=lambda o: keys[i, o])[:negatives]
        ranking = sorted(chosen + [test[i]], key=lambda o: (-scores[i, o], o))
        ranks.append(ranking.index(test[i]))
    return np.array(ranks)


def reference_metrics(ranks, k):
    """HR@k and NDCG@k from their definitions, one subscriber at a time."""
    hr = [1.0 if r < k else 0.0 for r in ranks]
    ndcg = [1.0 / np.log2(r + 2) if r < k else 0.0 for r in ranks]
    return float(np.mean(hr)), float(np.mean(ndcg))


@dataclass
class MatrixScorer:
    """Scores looked up by a row key column: any ranking a test needs, ties included."""
    matrix: np.ndarray
    key: str = Col.SUBSCRIBER_IDX
    name: str = "matrix"
    offer_ids: tuple = tuple(OFFER_IDS)

    def score(self, batch):
        return self.matrix[batch[self.key].to_numpy()]


@dataclass
class KnowsTheAnswer:
    """Puts the held-out offer first (or last): the protocol's ceiling and floor."""
    name: str
    sign: float
    offer_ids: tuple = tuple(OFFER_IDS)

    def score(self, batch):
        out = np.zeros((len(batch), N_OFFERS))
        out[np.arange(len(batch)), batch[sampled_protocol.TEST_OFFER_IDX].to_numpy()] = self.sign
        return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_offers,negatives", [(150, 99), (30, 99), (40, 5)])
def test_rank_agrees_with_reference(seed, n_offers, negatives):
    rng = np.random.default_rng(seed)
    n = 60
    scores = rng.integers(0, 8, size=(n, n_offers)).astype(float)  # ties on purpose
    subscribers = rng.integers(0, 10_000, n)
    held = [rng.choice(n_offers, size=rng.integers(0, 6), replace=False) for _ in range(n)]
    test = np.array([rng.choice([o for o in range(n_offers) if o not in set(h)])
                     for h in held])
    scorer = MatrixScorer(scores, key="row", offer_ids=tuple(range(n_offers)))
    batch = pd.DataFrame({Col.SUBSCRIBER_ID: [f"S{i}" for i in range(n)], "row": range(n),
                          Col.SUBSCRIBER_IDX: subscribers, sampled_protocol.TEST_OFFER_IDX: test,
                          sampled_protocol.HELD_IDX: [h.tolist() for h in held]})
    got = sampled_protocol.per_subscriber(batch, scorer, seed, negatives)
    expected = reference_ranks(scores, subscribers, held, test, seed, negatives)
    np.testing.assert_array_equal(got[sampled_protocol.TEST_RANK].to_numpy(), expected)
    hit, ndcg = sampled_ranking.hit_and_ndcg(expected, 10)
    assert (hit.mean(), ndcg.mean()) == pytest.approx(reference_metrics(expected, 10), rel=1e-12)
    # the same subscriber gets the same sample in any batch (independent of partitioning)
    half = sampled_protocol.per_subscriber(batch.iloc[n // 2:], scorer, seed, negatives)
    np.testing.assert_array_equal(half[sampled_protocol.TEST_RANK].to_numpy(), expected[n // 2:])


def test_sampled_negatives_are_distinct_and_never_held():
    subscribers = np.arange(50)
    excluded = [np.array([s % 20, (s + 1) % 20]) for s in subscribers]
    neg = sampled_ranking.sample_negatives(1, subscribers, excluded, 120, 99)
    assert neg.shape == (50, 99)
    for row, ex in zip(neg, excluded):
        assert len(set(row)) == 99 and not set(row) & set(ex) and row.min() >= 0
    few = sampled_ranking.sample_negatives(1, subscribers, excluded, 30, 99)
    assert ((few >= 0).sum(axis=1) == 28).all()


def literal_frames(spark, held, test, segments):
    """interactions (train = held offers, test = one offer each) and subscriber_features."""
    rows = [(f"S{i}", i, o, Split.TRAIN) for i, offers in enumerate(held) for o in offers]
    rows += [(f"S{i}", i, int(t), Split.TEST) for i, t in enumerate(test)]
    interactions = spark.createDataFrame(rows, f"{Col.SUBSCRIBER_ID} string, "
                                         f"{Col.SUBSCRIBER_IDX} long, {Col.OFFER_IDX} int, "
                                         f"{Col.SPLIT} string")
    features = spark.createDataFrame([(f"S{i}", str(s)) for i, s in enumerate(segments)],
                                     f"{Col.SUBSCRIBER_ID} string, {Col.SEGMENT} string")
    return interactions, features


def small_config(negatives, ks):
    return config.load("conf/local.yaml").with_overrides(**{
        "evaluation.sampled_negatives": negatives, "evaluation.ks": list(ks),
        "gate.k": ks[0]})


def test_known_answers_on_literal_rows(spark):
    # 4 subscribers, 8 offers, 3 negatives: 4 candidates each; the ceiling ranks the held-out
    # offer 0th, the floor 3rd (below every sampled offer) for every subscriber
    held, test = [[0, 1], [2], [], [5, 6]], [3, 4, 7, 0]
    interactions, features = literal_frames(spark, held, test, ["a", "a", "b", "b"])
    cfg = small_config(3, (1, 3))
    got = offline.sampled_candidates(interactions, features, [
        KnowsTheAnswer("ceiling", 1.0), KnowsTheAnswer("floor", -1.0)], cfg)
    ideal = [(m, k, seg, 1.0) for seg in ("all", "a", "b") for k in (1, 3) for m in ("hr", "ndcg")]
    assert sorted(got["ceiling"]) == sorted(ideal)
    assert sorted(got["floor"]) == sorted((m, k, seg, 0.0) for m, k, seg, _ in ideal)
    assert offline.sampled_ks(cfg.evaluation) == (1, 3)


def test_every_scorer_on_executors_agrees_with_the_reference(spark):
    rng = np.random.default_rng(7)
    n, negatives = 40, 4
    held = [rng.choice(N_OFFERS, size=rng.integers(0, 3), replace=False).tolist()
            for _ in range(n)]
    test = [int(rng.choice([o for o in range(N_OFFERS) if o not in h])) for h in held]
    segments = rng.choice(["a", "b"], n)
    interactions, features = literal_frames(spark, held, test, segments)
    scores = rng.integers(0, 4, size=(n, N_OFFERS)).astype(float)  # ties on purpose
    scorers = [MatrixScorer(scores), PopularityScorer(OFFER_IDS, np.arange(N_OFFERS, 0, -1.0)),
               offline.RandomScorer(OFFER_IDS, seed=3)]
    cfg = small_config(negatives, (2, 4))
    got = offline.sampled_candidates(interactions.repartition(3), features, scorers, cfg)
    subscribers = np.arange(n)
    for scorer in scorers:
        local = pd.DataFrame({Col.SUBSCRIBER_ID: [f"S{i}" for i in range(n)]})
        matrix = np.asarray(scorer.score(local.assign(**{Col.SUBSCRIBER_IDX: subscribers})))
        ranks = reference_ranks(matrix, subscribers, held, test, cfg.seed, negatives)
        expected = {}
        for seg, mask in (("all", np.ones(n, bool)), ("a", segments == "a"),
                          ("b", segments == "b")):
            for k in (2, 4):
                expected[("hr", k, seg)], expected[("ndcg", k, seg)] = reference_metrics(
                    ranks[mask], k)
        rows = got[scorer.name]
        assert len(rows) == len(expected), scorer.name
        assert {(m, k, seg): v for m, k, seg, v in rows} == pytest.approx(expected), scorer.name


@pytest.mark.parametrize("negatives,ks,expected", [
    (99, (5, 10), (5, 10)), (99, (1, 5), (1, 5, 10)), (7, (5, 10), (5,)), (0, (5,), ())])
def test_sampled_ks_are_evaluation_ks_and_10_below_the_candidate_count(negatives, ks, expected):
    cfg = config.EvaluationConfig(ks=ks, sampled_negatives=negatives)
    assert offline.sampled_ks(cfg) == expected


def test_negative_sample_size_is_refused_with_the_key():
    with pytest.raises(ConfigError, match=r"evaluation\.sampled_negatives"):
        config.EvaluationConfig(sampled_negatives=-1)
    assert sampled_protocol.protocol_name(99) == "sampled99"


def test_a_subscribers_other_test_offers_are_never_their_negatives(spark):
    rows = [("S1", 0, "train"), ("S1", 2, "test"), ("S1", 4, "test"), ("S2", 3, "test")]
    interactions = spark.createDataFrame(
        [(s, i, o, split) for i, (s, o, split) in enumerate(rows)],
        f"{Col.SUBSCRIBER_ID} string, {Col.SUBSCRIBER_IDX} int, {Col.OFFER_IDX} int, "
        f"{Col.SPLIT} string")
    got = {(r[Col.SUBSCRIBER_ID], r[sampled_protocol.TEST_OFFER_IDX]):
           (sorted(r[sampled_protocol.HELD_IDX]), sorted(r[Col.HISTORY_IDX]))
           for r in sampled_protocol.evaluation_rows(interactions).collect()}
    assert got == {("S1", 2): ([0, 2, 4], [0]), ("S1", 4): ([0, 2, 4], [0]),
                   ("S2", 3): ([3], [])}


NEGATIVES_CSV = """user,item
S0,O1
S0,O2
S0,O2
S1,O0
S1,O6
S1,O7
S1,
S9,O1
S2,O99
"""


def test_a_negatives_file_gives_exactly_its_candidates_and_counts_every_row(spark, tmp_path):
    # S0's test offer 3 scores 5: of its file candidates O1 (6) and O2 (4) one is ahead, rank 1;
    # sampled candidates would have met O4..O7 (9) too. S1's test offer 4 scores 2 below O6 and
    # O7 (3) and above O0 (1): rank 2. S2 has only an unknown item: left out, as is S3.
    (tmp_path / "negatives.csv").write_text(NEGATIVES_CSV)
    held, test = [[0], [1], [], [5]], [3, 4, 7, 0]
    interactions, features = literal_frames(spark, held, test, ["a", "a", "b", "b"])
    scores = np.array([[0, 6, 4, 5, 9, 9, 9, 9], [1, 0, 9, 9, 2, 9, 3, 3],
                       [9] * 8, [9] * 8], dtype=float)
    offers = spark.createDataFrame([(o, i) for i, o in enumerate(OFFER_IDS)],
                                   f"{Col.OFFER_ID} string, {Col.OFFER_IDX} int")
    cfg = config.load("conf/interactions_example.yaml").with_overrides(**{
        "inputs.interactions.path": str(tmp_path),
        "inputs.interactions.negatives.path": "negatives.csv"})
    assert offline.uses_negatives_file(cfg)
    candidates, counts = offline.negatives_file_candidates(spark, cfg, "delta-rs",
                                                           interactions, offers)
    assert {r[Col.SUBSCRIBER_ID]: list(r[sampled_protocol.CANDIDATE_IDX])
            for r in candidates.collect()} == {"S0": [1, 2], "S1": [0, 6, 7]}
    assert counts == {"read": 9, "accepted": 5, "null_key": 1, "unknown_item": 1,
                      "unknown_user": 1, "duplicate": 1, "without_candidates": 2}
    got = offline.sampled_candidates(interactions, features, [MatrixScorer(scores)],
                                     small_config(99, (1, 2, 3)), candidates)
    expected = {("hr", 1, "all"): 0.0, ("hr", 2, "all"): 0.5, ("hr", 3, "all"): 1.0,
                ("ndcg", 1, "all"): 0.0, ("ndcg", 2, "all"): 0.5 / np.log2(3),
                ("ndcg", 3, "all"): 0.5 / np.log2(3) + 0.5 / np.log2(4)}
    expected.update({(m, 10, "all"): expected[(m, 3, "all")] for m in ("hr", "ndcg")})
    assert {(m, k, seg): v for m, k, seg, v in got["matrix"] if seg == "all"} == pytest.approx(
        expected)
    assert sampled_protocol.protocol_name(99, from_file=True) == "sampled_file"


def test_a_negatives_file_needs_user_and_item_mapped():
    with pytest.raises(ConfigError, match=r"inputs\.interactions\.negatives\.columns"):
        config.InteractionsSourceConfig(negatives=config.TableSourceConfig(
            "negatives.csv", {"user": "u"}))
