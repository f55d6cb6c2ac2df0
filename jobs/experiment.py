"""spark-submit entry point: A/B results (conversion, uplift with intervals, p-value, sample-ratio check, MDE) of the offers published in the window before the run date, to `experiment_results`."""
from telcorec.cli import stage_main
from telcorec.stages import experiment

if __name__ == "__main__":
    stage_main("experiment", "Join the offers published in the experiment.window_days before the "
               "run date, their arms and the responses ingested up to it; write conversion per "
               "arm and segment, uplift over control with intervals, the p-value, the "
               "sample-ratio check and the MDE to `experiment_results`.", experiment.run)
