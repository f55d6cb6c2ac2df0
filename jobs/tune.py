"""spark-submit entry point: Hyperparameter search (one Spark task per trial) and ensemble weights on validation."""
from telcorec.cli import stage_main
from telcorec.stages import tune

if __name__ == "__main__":
    stage_main("tune", "Search LightFM hyperparameters (tuning.space; every trial a Spark task; "
               "results in the trials table, the best in warehouse/tuning/run_date=.../best.json, "
               "used by the train stage with train.lightfm_from_tuning: true) and/or the ensemble "
               "weights (ensemble.tune_weights) on the early-stopping validation subscribers. "
               "Needs the features and interactions of the run date.", tune.run)
