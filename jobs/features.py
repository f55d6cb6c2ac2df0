"""spark-submit entry point: Subscriber usage/lifecycle features and offer features, from one pass over the CDR."""
from telcorec.cli import stage_main
from telcorec.stages import features

if __name__ == "__main__":
    stage_main("features", "Subscriber usage/lifecycle features and offer features, from one pass over the CDR.",
               features.run)
