"""How far to trust an attribution: four checks on every ablation study.

- :mod:`.agreement`: do curves of the same (unit, clip) agree across baselines,
  segment lengths and reductions (rank correlation on the coarser grid, peak segment)?
- :mod:`.deletion`: deleting segments cumulatively in attribution order against
  random order (area between the curves), and the gap between the sum of
  single-segment attributions and the effect of removing those segments together.
- :mod:`.randomisation`: attributions recomputed with the weights re-initialised
  top down, layer by layer (cascading model randomisation).
- :mod:`.bootstrap`: speakers resampled; how often each selected unit stays in the
  top k, and the interval of its effect size.

:mod:`.summary` turns the tables into the report's figure and its page.
"""
