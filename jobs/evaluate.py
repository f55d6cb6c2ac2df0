"""spark-submit entry point: Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`."""
from telcorec.cli import stage_main
from telcorec.stages import evaluate

if __name__ == "__main__":
    stage_main("evaluate", "Precision/recall on held-out plans for the model, popularity and the oracle; write `metrics`.",
               evaluate.run)
