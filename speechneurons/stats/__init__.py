"""Selectivity statistics: which units care about each factor of a corpus, and is it real."""
