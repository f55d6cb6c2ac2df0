"""spark-submit entry point: Subscriber x offer interactions with contiguous indices and a train/test split."""
from telcorec.cli import stage_main
from telcorec.stages import interactions

if __name__ == "__main__":
    stage_main("interactions", "Subscriber x offer interactions with contiguous indices and a train/test split.",
               interactions.run)
