"""spark-submit entry point: Train and evaluate the NCF models (GMF, MLP, NeuMF) through Petastorm and TorchDistributor."""
import json

from telcorec.cli import main
from telcorec.exceptions import ConfigError
from telcorec.ncf import stage


def body(spark, cfg, args):
    if not cfg.ncf.enabled:
        raise ConfigError("ncf.enabled is false in this config: use conf/full.yaml or set "
                          "ncf: {enabled: true} in yours")
    return json.dumps(stage.run(spark, cfg, args.run_date), indent=2, default=str)


if __name__ == "__main__":
    main("ncf", "Train and evaluate the NCF models of ncf.models (GMF, MLP, NeuMF): examples with "
         "sampled negatives in Spark, fed through Petastorm to TorchDistributor workers. Needs "
         "ncf.enabled: true (conf/full.yaml) and the interactions of the run date.",
         body)
