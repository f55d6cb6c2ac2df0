"""telcorec: a batch "best next offer" recommender for telecom operators, run with spark-submit.

The package in layers, top first; a module imports only from its own package and the layers
below it (tests/test_architecture.py checks it):

    cli, sql, launch      the jobs' shared main, analyst SQL, the launcher behind spark-submit.sh
    stages                one module per pipeline stage in run order; pipeline runs them all
    publish               the score stage's passes, the quality gate, the offers contract
    evaluation            offline metrics, protocols, experiment results, drift, the report
    offers                what one scoring task does to a batch: rules, re-ranking, reasons, arms
    models                the model contract and registry, LightFM, NCF, baselines
    features | sources | synthetic   feature transforms; input adapters; the demo generator
    io                    warehouse paths, the Delta writers, artifacts, runs, metrics store
    core                  columns, schemas, exceptions, typed config
"""
__version__ = "0.1.0"
