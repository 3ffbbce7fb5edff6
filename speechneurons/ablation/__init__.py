"""Segment ablation: segments, baselines, reductions, the Captum-based engine."""
