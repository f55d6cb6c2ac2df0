"""spark-submit entry point: Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path."""
from telcorec.cli import stage_main
from telcorec.stages import generate

if __name__ == "__main__":
    stage_main("generate", "Write the synthetic operator's input tables (subscribers, catalogue, subscriptions, CDR) under inputs.path.",
               generate.run)
