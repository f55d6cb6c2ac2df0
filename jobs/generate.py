"""spark-submit entry point: Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path."""
from telcorec import generation
from telcorec.cli import stage_main

if __name__ == "__main__":
    stage_main("generate", "Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path.",
               generation.run)
