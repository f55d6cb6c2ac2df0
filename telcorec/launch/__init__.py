"""The launcher behind ./spark-submit.sh: run as `python -m telcorec.launch ARGS`.

spark-submit.sh only finds or builds Python 3.11, Java 17 and .venv, then hands over here:
- `cli`: the commands (test, cluster, JOB) and their help;
- `submit`: the launcher's own options and the spark-submit argument list of a job, built from
  conf/spark/*.properties (pure functions, unit-tested in tests/launch/);
- `environment`: what a cluster needs shipped (the telcorec/ zip, the venv-pack archive) and
  the job config's storage.writer;
- `cluster` and `daemons`: a standalone cluster on 127.0.0.1, started and stopped with Spark's
  own sbin/spark-daemon.sh from the pyspark wheel.
Only the standard library is imported at start-up (PyYAML lazily), so `--help` runs with any
Python 3 before .venv exists.
"""
