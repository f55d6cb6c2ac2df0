"""spark-submit entry point: Subscriber x offer interactions with contiguous indices and a train/test split."""
from telcorec import interactions
from telcorec.cli import stage_main

if __name__ == "__main__":
    stage_main("interactions", "Subscriber x offer interactions with contiguous indices and a train/test split.",
               interactions.run)
