"""spark-submit entry point: PSI of features and scores, offer-mix shift and input volumes against the previous published run, to `drift`."""
from telcorec.cli import stage_main
from telcorec.stages import drift

if __name__ == "__main__":
    stage_main("drift", "Compare the run date with the previous published run (and the served "
               "model's training date): PSI of every subscriber feature and of the scores, the "
               "offer mix, input volumes; write them with alerts to `drift`.", drift.run)
