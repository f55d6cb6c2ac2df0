"""spark-submit entry point: Train and evaluate the NCF models (GMF, MLP, NeuMF) through Petastorm and TorchDistributor."""
from telcorec.cli import stage_main
from telcorec.stages import ncf as stage

if __name__ == "__main__":
    stage_main("ncf", "Train and evaluate the NCF models of ncf.models (GMF, MLP, NeuMF): examples "
               "with sampled negatives in Spark, fed through Petastorm to TorchDistributor "
               "workers. Needs ncf.enabled: true (conf/full.yaml) and the interactions of the "
               "run date.", stage.run)
