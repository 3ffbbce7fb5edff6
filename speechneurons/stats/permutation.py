"""Permutation p-values that respect speakers.

RAVDESS has 24 actors, each recorded in every condition. A unit that tracks
one actor's voice is not an emotion unit, and clips of one actor are not
independent. So the null distributions keep the actor structure:

- ``within_actor`` (emotion, intensity, statement): labels are shuffled
  among each actor's own clips; actor effects stay where they are.
- ``between_actors`` (gender, a property of the actor): the actors' labels
  are shuffled across actors, and every clip follows its actor.

The statistic is the between-level sum of squares, which for a fixed total
is monotone in F (and eta squared); all units share each permutation, so a
block of permutations is one matrix product.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("within_actor", "between_actors")


def permute_labels(codes: np.ndarray, actors: np.ndarray, scheme: str,
                   rng: np.random.Generator) -> np.ndarray:
    """One permutation of integer ``codes`` [clips] under ``scheme``."""
    out = codes.copy()
    if scheme == "within_actor":
        for actor in np.unique(actors):
            members = np.flatnonzero(actors == actor)
            out[members] = codes[rng.permutation(members)]
        return out
    if scheme == "between_actors":
        unique_actors, first = np.unique(actors, return_index=True)
        actor_codes = codes[first]
        if any((codes[actors == a] != c).any() for a, c in zip(unique_actors, actor_codes)):
            raise ValueError("between_actors needs a label that is constant within each actor")
        shuffled = dict(zip(unique_actors, rng.permutation(actor_codes)))
        return np.array([shuffled[a] for a in actors])
    raise ValueError(f"unknown permutation scheme {scheme!r}; one of {SCHEMES}")


def _between_ss(centred: np.ndarray, code_block: np.ndarray, levels: int) -> np.ndarray:
    """[perms, clips] codes -> [perms, units] between-level sums of squares (centred x)."""
    perms, clips = code_block.shape
    indicator = np.zeros((perms, levels, clips))
    indicator[np.arange(perms)[:, None], code_block, np.arange(clips)[None, :]] = 1.0
    counts = indicator.sum(axis=2)  # [perms, levels]
    sums = (indicator.reshape(perms * levels, clips) @ centred).reshape(perms, levels, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = np.where(counts[:, :, None] > 0, sums**2 / counts[:, :, None], 0.0)
    return ss.sum(axis=1)


def permutation_pvalues(
    x: np.ndarray,
    codes: np.ndarray,
    levels: int,
    actors: np.ndarray,
    scheme: str,
    permutations: int = 1000,
    seed: int = 0,
    block: int = 25,
) -> np.ndarray:
    """[units] p-values, (1 + #{null >= observed}) / (1 + permutations)."""
    centred = np.asarray(x, dtype=np.float64) - np.asarray(x, dtype=np.float64).mean(axis=0)
    observed = _between_ss(centred, codes[None, :], levels)[0]
    tolerance = 1e-9 * np.maximum(np.abs(observed), 1e-12)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(x.shape[1], dtype=np.int64)
    done = 0
    while done < permutations:
        n = min(block, permutations - done)
        code_block = np.stack([permute_labels(codes, actors, scheme, rng) for _ in range(n)])
        null = _between_ss(centred, code_block, levels)
        exceed += (null >= observed - tolerance).sum(axis=0)
        done += n
    return (1 + exceed) / (1 + permutations)
