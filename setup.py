"""telcorec: a batch "best next offer" recommender for telecom operators on Spark.

Pins follow ../shared/STACK.md: they are the set known to work together (Petastorm forces
pyarrow 14, hence pyspark 4.0 and numpy 1.x; torch 2.13.0 is the CPU build on the machine's
disk; deltalake 0.18 is the last release that reads back with pyarrow 14; duckdb 1.5.6 runs with
pyarrow 14, ships its json, parquet and icu extensions built in (it never downloads one), and
lies on the machine's disk; 1.1.3 aborted at interpreter exit (SIGABRT, "terminate called without
an active exception") in 3 of 24 runs of jobs/sql.py over delta-rs datasets; 1.5.6 in none of
52 runs).
"""
from setuptools import find_packages, setup

setup(
    name="telcorec",
    version="0.1.0",
    description="Best-next-offer recommender for telecom operators (PySpark, LightFM, PyTorch, Delta)",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["telcorec", "telcorec.*"]),
    package_data={"telcorec": ["py.typed"]},
    install_requires=[
        "pyspark==4.0.1",
        "pyarrow==14.0.2",
        "numpy==1.26.4",
        "pandas==2.2.3",
        "scipy>=1.11",
        "petastorm==0.12.1",
        "torch==2.13.0",
        "lightfm-next==1.19.0",
        "deltalake==0.18.2",
        "duckdb==1.5.6",          # `sql`'s engine over delta-rs Arrow datasets; needs no pyarrow pin
        "PyYAML>=6.0,<7",
        "matplotlib>=3.8",
        "psutil>=5.9",            # benchmarks: driver peak memory (petastorm needs it too)
    ],
    extras_require={
        "test": ["pytest>=8"],
    },
)
