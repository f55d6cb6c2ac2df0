"""spark-submit entry point: Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`."""
from telcorec import evaluation
from telcorec.cli import stage_main

if __name__ == "__main__":
    stage_main("evaluate", "Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`.",
               evaluation.run)
