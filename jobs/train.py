"""spark-submit entry point: Train one LightFM hybrid model per shard of subscribers, inside Spark tasks."""
from telcorec.cli import stage_main
from telcorec.stages import train

if __name__ == "__main__":
    stage_main("train", "Train one LightFM hybrid model per shard of subscribers, inside Spark tasks.",
               train.run)
