"""Neural Collaborative Filtering (He et al., WWW 2017) the Spark way: examples built in Spark,
streamed by Petastorm to TorchDistributor workers, scored and evaluated on executors.

Modules, in the order data flows through them: `examples` (the Spark transforms: positives,
validation hold-out, negatives), `codes` (feature codes), `prepare` (reads the tables, builds
each epoch's examples), `feed` (Petastorm), `networks` (nn.Modules only), `losses`, `model`
(the model contract), `trainer` (the epoch loop in each TorchDistributor worker), `scorer`
(the Scorer protocol) and `stage` (`run`, the entry point). The paper's HR@10 / NDCG@10
protocol is shared with every other model: `telcorec.sampled_protocol`.
"""
