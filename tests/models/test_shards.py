"""Sharded training runs every shard in a task of its own (one shard per partition)."""
import pandas as pd
import pytest
from pyspark import TaskContext
from pyspark.sql import types as T

from telcorec.core.columns import Col
from telcorec.models.shards import PARTITION_KEY, one_shard_per_partition

SEEN = T.StructType([T.StructField("partition", T.IntegerType()),
                     T.StructField("shards", T.ArrayType(T.IntegerType())),
                     T.StructField("rows", T.LongType())])


def where_it_ran(pdf: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"partition": [TaskContext.get().partitionId()],
                         "shards": [sorted(pdf[Col.SHARD].unique().tolist())],
                         "rows": [len(pdf)]})


@pytest.mark.parametrize("shards", [1, 2, 16])
def test_each_shard_is_one_partition_and_one_group(spark, shards, capsys):
    rows = spark.createDataFrame([(f"S{i}", i % shards) for i in range(40 * shards)],
                                 f"{Col.SUBSCRIBER_ID} string, {Col.SHARD} int").repartition(3)
    laid_out = one_shard_per_partition(rows, shards)
    grouped = laid_out.groupBy(PARTITION_KEY).applyInPandas(where_it_ran, SEEN)
    grouped.explain()
    plan = capsys.readouterr().out
    # one shuffle by the key (one partition: no key), of the kind adaptive execution leaves
    # alone; the grouping reuses it instead of shuffling again
    by_key = [line for line in plan.splitlines() if "Exchange" in line
              and (f"hashpartitioning({PARTITION_KEY}" in line or "SinglePartition" in line)]
    assert len(by_key) == 1 and "REPARTITION_BY_NUM" in by_key[0]
    seen = sorted((r["partition"], tuple(r["shards"]), r["rows"]) for r in grouped.collect())
    assert laid_out.rdd.getNumPartitions() == shards
    # every shard alone in its group, and every group in a partition of its own
    assert sorted(s for _, (s,), _ in seen) == list(range(shards))
    assert sorted(p for p, _, _ in seen) == list(range(shards))
    assert all(n == 40 for _, _, n in seen)
