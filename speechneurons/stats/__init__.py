"""Selectivity statistics: which units care about emotion, sex and intensity, and is it real."""
