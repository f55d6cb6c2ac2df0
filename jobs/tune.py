"""spark-submit entry point: Hyperparameter search (one Spark task per trial) and ensemble weights on validation."""
import json

from telcorec import tuning
from telcorec.cli import main
from telcorec.exceptions import ConfigError


def body(spark, cfg, args):
    if not (cfg.tuning.enabled or cfg.ensemble.tune_weights):
        raise ConfigError("nothing to tune: set tuning: {enabled: true} and/or ensemble: "
                          "{tune_weights: true} (conf/full.yaml has both)")
    return json.dumps(tuning.run(spark, cfg, args.run_date), indent=2, default=str)


if __name__ == "__main__":
    main("tune", "Search LightFM hyperparameters (tuning.space; every trial a Spark task; results "
         "in the trials table, the best in warehouse/tuning/run_date=.../best.json, used by the "
         "train stage with train.lightfm_from_tuning: true) and/or the ensemble weights "
         "(ensemble.tune_weights) on the early-stopping validation subscribers. Needs the "
         "features and interactions of the run date.", body)
