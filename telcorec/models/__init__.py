"""Recommendation models behind one small contract: fit, representations/scores, save/load."""
