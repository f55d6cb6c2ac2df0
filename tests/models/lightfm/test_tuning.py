"""The tune stage: trial generation, trials as Spark tasks into the `trials` table, the best
configuration reused by the train stage, ensemble weights found on validation and used by
load_scorer."""
import json

import numpy as np
import pytest
import scipy.sparse as sp
from deltalake import DeltaTable

from helpers.tiny_warehouse import RUN, tiny_warehouse
from telcorec.core.columns import LIGHTFM_KNOBS, Col
from telcorec.core.config import TuningConfig
from telcorec.core.exceptions import ConfigError
from telcorec.io import artifacts
from telcorec.models import scoring
from telcorec.models.lightfm import tuning
from telcorec.stages import train as train_stage
from telcorec.stages import tune as tune_stage


def test_grid_is_every_combination_in_order():
    grid = tuning.trial_grid(TuningConfig(space={"no_components": (8, 16),
                                                 "learning_rate": (0.01, 0.05)}))
    assert grid == [{"no_components": 8, "learning_rate": 0.01},
                    {"no_components": 8, "learning_rate": 0.05},
                    {"no_components": 16, "learning_rate": 0.01},
                    {"no_components": 16, "learning_rate": 0.05}]
    assert all(type(t["no_components"]) is int for t in grid)


def test_random_draws_are_seeded_distinct_and_within_the_space():
    space = {"no_components": (8, 16, 32), "max_sampled": (5, 10, 20)}
    draws = tuning.trial_grid(TuningConfig(method="random", trials=5, seed=1, space=space))
    assert len(draws) == 5 and len({tuple(d.values()) for d in draws}) == 5
    assert all(d["no_components"] in space["no_components"]
               and d["max_sampled"] in space["max_sampled"] for d in draws)
    assert draws == tuning.trial_grid(TuningConfig(method="random", trials=5, seed=1, space=space))
    assert draws != tuning.trial_grid(TuningConfig(method="random", trials=5, seed=2, space=space))
    # more trials than combinations: the whole grid, once each
    every = tuning.trial_grid(TuningConfig(method="random", trials=50, seed=1, space=space))
    assert len(every) == 9 and len({tuple(d.values()) for d in every}) == 9
    ranged = tuning.trial_grid(TuningConfig(
        method="random", trials=40, seed=3, space={"epochs": (5,)},
        ranges={"learning_rate": (0.01, 0.1), "no_components": (8, 64)}))
    assert len(ranged) == 40
    assert all(0.01 <= d["learning_rate"] <= 0.1 and 8 <= d["no_components"] <= 64
               and type(d["no_components"]) is int and d["epochs"] == 5 for d in ranged)
    assert len({d["learning_rate"] for d in ranged}) == 40


@pytest.mark.parametrize("kwargs, message", [
    ({"space": {"no_components": (8,), "dropout": (0.1,)}}, "tuning.space.dropout"),
    ({"space": {"learning_rate": (0.05, 2.0)}}, "tuning.space.learning_rate"),
    ({"space": {"no_components": (8.5,)}}, "must be integers"),
    ({"space": {"epochs": tuple(range(1, 21)), "no_components": tuple(range(1, 21))}},
     "method: random"),
    ({"ranges": {"learning_rate": (0.01, 0.1)}}, "tuning.ranges"),
])
def test_bad_spaces_name_the_key(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TuningConfig(**kwargs)


def test_weight_search_finds_the_combination_that_made_the_truth():
    """The held-out offer of each user is the argmax of 2 x A + 1 x B (min-max normalised);
    only weights proportional to (2, 1, 0) recover all of them."""
    rng = np.random.default_rng(0)
    users, offers = 300, 20
    a, b, noise = (rng.random((users, offers)) for _ in range(3))
    minmax = lambda s: (s - s.min(1, keepdims=True)) / np.ptp(s, axis=1, keepdims=True)
    truth_idx = np.argmax(2 * minmax(a) + minmax(b), axis=1)
    truth = sp.csr_matrix((np.ones(users), (np.arange(users), truth_idx)), shape=(users, offers))
    seen = sp.csr_matrix((users, offers))
    combos = tuning.weight_combinations(3, (0.0, 0.5, 1.0, 1.5, 2.0), 500, 0, (1.0, 1.0, 1.0))
    assert combos[0] == pytest.approx((1 / 3, 1 / 3, 1 / 3)) and len(set(combos)) == len(combos)
    values = tuning.combination_precision([a, b, noise], seen, truth, combos, "weighted", 60, 1)
    best = combos[int(np.argmax(values))]
    print(f"weight search: {len(combos)} combinations, best {best} precision@1 "
          f"{values.max():.4f}, configured (1,1,1) {values[0]:.4f}")
    assert best == pytest.approx((2 / 3, 1 / 3, 0.0)) and values.max() == 1.0
    assert np.sum(values == 1.0) == 1 and values[0] < 0.9
    # a seen (excluded) offer is never counted as a hit
    hidden = tuning.combination_precision([a, b, noise], truth, truth, [best], "weighted", 60, 1)
    assert hidden[0] == 0.0


@pytest.fixture(scope="module")
def tuned(spark, tmp_path_factory):
    """A grid of 4 trials for warp, then the train stage with the best one, and the weights of
    a warp + bpr ensemble: the tune stage run twice (a rerun of the same date)."""
    base, wh = tiny_warehouse(spark, tmp_path_factory.mktemp("tune-wh"))
    stats = wh.feature_stats(RUN)
    stats.parent.mkdir(parents=True, exist_ok=True)
    stats.write_text(json.dumps({"version": "test"}))  # what the features stage leaves
    cfg = base.with_overrides(**{
        "tuning.enabled": True, "tuning.space": {"no_components": [4, 16],
                                                 "learning_rate": [0.02, 0.1]},
        "train.models": ["warp", "bpr"], "train.lightfm.epochs": 6,
        "train.early_stopping.every": 0, "train.early_stopping.validation_share": 0.3,
        "train.lightfm_from_tuning": True, "ensemble.modes": ["weighted", "rrf"],
        "ensemble.tune_weights": True, "ensemble.weights": {"lightfm_warp": 1.5,
                                                            "lightfm_bpr": 1.0}})
    first = tune_stage.run(spark, cfg, RUN)
    rows_first = DeltaTable(str(wh.table("trials"))).to_pandas()
    second = tune_stage.run(spark, cfg, RUN)
    trained = train_stage.run(spark, cfg, RUN)
    return cfg, wh, first, second, rows_first, trained


def _comparable(frame):
    return (frame.drop(columns=[Col.SECONDS]).sort_values(Col.TRIAL)
            .reset_index(drop=True))


@pytest.mark.slow
def test_trials_table_one_row_per_trial_and_rerun_replaces_it(tuned, spark):
    cfg, wh, first, second, rows_first, _ = tuned
    rows = DeltaTable(str(wh.table("trials"))).to_pandas()
    print(rows[[Col.TRIAL, Col.PARAMS, Col.VALUE, Col.BEST_EPOCH, Col.SECONDS,
                Col.TRAIN_PAIRS, Col.VALIDATION_PAIRS, Col.BEST]].to_string())
    assert sorted(rows[Col.TRIAL]) == [0, 1, 2, 3] and rows[Col.BEST].sum() == 1
    expected = [(4, 0.02), (4, 0.1), (16, 0.02), (16, 0.1)]
    assert [(r.no_components, r.learning_rate) for r in
            rows.sort_values(Col.TRIAL).itertuples()] == expected
    assert set(rows[Col.METRIC]) == {"precision@5"} and (rows[Col.VALIDATION_PAIRS] > 0).all()
    assert (rows[Col.BEST_EPOCH] == 6).all()  # early stopping off: measured after the last epoch
    for r in rows.itertuples():
        params = json.loads(r.params)
        assert {k: getattr(r, k) for k in LIGHTFM_KNOBS} == {k: params[k] for k in LIGHTFM_KNOBS}
    best = rows.loc[rows[Col.BEST]].iloc[0]
    assert best[Col.VALUE] == rows[Col.VALUE].max()
    # the rerun replaced the run date's rows: same trials, same (deterministic) figures
    assert first == second
    assert _comparable(rows).equals(_comparable(rows_first))


@pytest.mark.slow
def test_train_stage_uses_the_best_trial(tuned):
    cfg, wh, first, _, _, trained = tuned
    best = json.loads(tune_stage.best_path(wh, RUN).read_text())
    rows = DeltaTable(str(wh.table("trials"))).to_pandas()
    winner = rows.loc[rows[Col.BEST]].iloc[0]
    assert best["trial"] == first["best_trial"] == winner[Col.TRIAL]
    print(f"best trial {best['trial']}: {best['params']} precision@5 {best['value']:.4f}")
    _, meta = artifacts.load(wh.models(RUN, "lightfm_warp") / "shard=0000")
    assert meta["params"] == json.loads(winner[Col.PARAMS])
    # bpr was not tuned: it keeps the YAML values
    _, bpr = artifacts.load(wh.models(RUN, "lightfm_bpr") / "shard=0000")
    assert bpr["params"]["no_components"] == cfg.train.lightfm.no_components


@pytest.mark.slow
def test_ensemble_weights_found_on_validation_are_used_by_load_scorer(tuned):
    cfg, wh, first, _, _, _ = tuned
    found = json.loads((wh.models_root(RUN) / artifacts.ENSEMBLE_WEIGHTS).read_text())
    for mode in ("weighted", "rrf"):
        chosen = found["modes"][mode]
        values = [c["value"] for c in chosen["combinations"]]
        print(f"ensemble_{mode}: weights {chosen['weights']} precision@5 {chosen['value']:.4f} "
              f"(configured {chosen['configured_value']:.4f}, {len(values)} combinations, "
              f"{found['validation_subscribers']} validation subscribers)")
        assert chosen["value"] == max(values) >= chosen["configured_value"]
        assert sum(chosen["weights"].values()) == pytest.approx(2.5)  # the configured total
        scorer = scoring.load_scorer(wh, cfg, RUN, f"ensemble_{mode}")
        assert scorer.weights == [chosen["weights"][n] for n in ("lightfm_bpr", "lightfm_warp")]
    untuned = cfg.with_overrides(**{"ensemble.tune_weights": False})
    configured = scoring.load_scorer(wh, untuned, RUN, "ensemble_weighted")
    assert configured.weights == [1.0, 1.5]
    tuned_weighted = scoring.load_scorer(wh, cfg, RUN, "ensemble_weighted")
    # the weights are part of the version that `offers.model_version` records
    assert (configured.version != tuned_weighted.version) == \
        (configured.weights != tuned_weighted.weights)
    assert configured.version == scoring.load_scorer(wh, untuned, RUN, "ensemble_weighted").version
