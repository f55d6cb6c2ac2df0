"""Synthetic operator data with a hidden, learnable preference structure (see `generate`)."""
from telcorec.synthetic.generate import GeneratedTables, generate
from telcorec.synthetic.utility import true_utility

__all__ = ["GeneratedTables", "generate", "true_utility"]
