"""Which shard model scores a subscriber, and one Spark task per shard: the same stable hash of the
shard key at training, tuning, evaluation and scoring time."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from telcorec.core.columns import Col
from telcorec.core.config import TrainConfig

PARTITION_KEY = "_partition_key"  # see one_shard_per_partition

def shard_of(key: Column, shards: int) -> Column:
    """Stable shard from the shard key column (the subscriber id, or e.g. region): the same
    key lands in the same shard on every run, at training and at scoring time."""
    return F.pmod(F.xxhash64(key.cast("string")), F.lit(shards)).cast("int")

def with_shard(features: DataFrame, cfg: TrainConfig) -> DataFrame:
    return features.withColumn(Col.SHARD, shard_of(F.col(cfg.shard_key), cfg.shards))

def one_shard_per_partition(rows: DataFrame, shards: int, column: str = Col.SHARD) -> DataFrame:
    """The rows laid out so that every shard is exactly one partition, hence one task.

    A plain groupBy(shard) lets adaptive execution coalesce the shuffle partitions, which are
    small in bytes (a few columns per interaction) but long to train on, into one task that
    then fits every shard in turn (measured: 2, 4 and 16 shards all in one task at 2,000
    subscribers). A hash repartition on the shard id avoids coalescing but puts shards into the
    same partition whenever their hashes collide. So each shard gets a partition key whose
    Spark hash lands in a partition of its own, pmod(hash(key), shards) = shard (the
    expression HashPartitioning evaluates), picked on the driver among the first 64 x shards
    integers, and the rows are repartitioned by it into exactly `shards` partitions, which
    adaptive execution leaves as they are. Grouping by that key needs no further shuffle.
    `column`: the group id column, 0 .. shards - 1 (the tune stage lays out trials this way)."""
    keys = (rows.sparkSession.range(64 * shards)
            .select(F.col("id").alias(PARTITION_KEY),
                    F.pmod(F.hash("id"), F.lit(shards)).cast("int").alias(column))
            .groupBy(column).agg(F.min(PARTITION_KEY).alias(PARTITION_KEY)))
    # left: were a shard ever without a key (odds ~ e^-64) it would share a task, not vanish
    return (rows.join(F.broadcast(keys), on=column, how="left")
            .repartition(shards, PARTITION_KEY))
