"""Does the model use the units we name? Knock them out and measure what a probe loses.

Cross-fitted: for each fold of the selection's speakers, hidden layer L and
level of the target factor, the units chosen for that level on the *other*
folds' speakers (``cross_fit`` rows of ``selected_units.parquet``) are set
to zero or to their corpus mean inside the forward pass (a hook, the same
reader as the activation cache) on the fold's own clips only, and the pooled
activations of layer L and every later layer are recomputed. Random control
sets of the same layer and size, each unit matched to a selected one by
activation variance, get the same treatment. Probes trained on the
unablated activations of other held-out speakers (:mod:`speechneurons.probes`;
neither the choosing nor the scored speakers) then score the held-out
speakers' knocked-out activations: (a) the drop in
balanced accuracy, (b) the loss of recall of the level whose units were
removed (own) against the mean loss of the other levels, and (c) selected
against matched random units, paired over folds, with 95 % t-intervals and
a BH q over rows. Under a null with no special unit, (c) is centred on 0
(``bench/calibration.py``); selecting and scoring on the same speakers was
not (issue 18). Encoded is not the same as used
(Antverg & Belinkov 2022); comparing with matched random units follows
Property Neurons (Lin et al. 2024).
"""
