"""Speaker-general tests: the speaker is the unit of replication.

A claim that a unit "responds to a factor" is a claim about speakers not
recorded, so speakers' own ways of expressing each level (a speaker x level
interaction, a random slope) must count as noise, not as evidence. The tests
here work on one row per speaker and level (a *cell*) or one row per speaker:

- a factor that varies **within** speakers (what was said, how, how
  strongly): per speaker, the value of each level, adjusted by least squares
  for the speaker's other within-speaker factors (so that a level recorded
  at one level of another factor only is compared at the same mix of that
  factor as the other levels; with a balanced design this is the plain cell
  mean). The
  factor is then tested on the cells against the speaker x level interaction:
  the additive model ``cell ~ speaker + level`` fitted by least squares, F of
  ``level`` after ``speaker``. With every cell present this is the
  repeated-measures ANOVA (Winer 1971), for two levels the paired t over
  speakers (F = t^2); speakers missing a level contribute through the cells
  they have, and a speaker with one cell contributes nothing.
- a factor that varies **between** speakers (such as sex): one row per speaker, its
  mean over clips; one-way F over speakers.

When the cells of a level vary more than those of another (a level with
half the clips of the others), the repeated-measures F is liberal
(sphericity fails): measured on nulls of the bundled corpus's shape, 5.4 % of
8,000 units at p < 0.05. The p-value therefore multiplies both degrees of
freedom by the Huynh-Feldt epsilon (Huynh & Feldt 1976, with Lecoutre's
1991 correction, as R's afex uses), estimated per unit from the speakers
that have every level: 5.0 % then, where Greenhouse-Geisser's epsilon
over-corrects to 3.3 % (``bench/selectivity_null.py --scenario sphericity``). Epsilon is 1 for two levels, or
when fewer than two speakers have every level.

Permutations relabel the rows within each block (cells within a speaker;
speakers among all speakers), which is exchangeable under the null that the
factor has no mean effect in the population of speakers, and recompute the
same statistic. Every block keeps its level counts under such a relabelling,
so the F's denominator and degrees of freedom stay fixed and the statistic
reduces to a quadratic form of the level sums: all units share each
permutation, and a block of permutations is one matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Rows:
    """The rows a speaker-general test works on: ``values = weights @ x``.

    weights [rows, clips], or None when the rows are the clips themselves;
    codes [rows] level of each row; blocks [rows]
    exchangeability block (the speaker for cells; 0 for speaker means);
    unadjusted: speakers whose cells are plain means because their other
    factors could not be separated from the tested one.
    """

    weights: np.ndarray | None
    codes: np.ndarray
    blocks: np.ndarray
    n_levels: int
    unadjusted: tuple = ()

    def values(self, x: np.ndarray) -> np.ndarray:
        """[rows, units] from x [clips, units]."""
        x = np.asarray(x, dtype=np.float64)
        return x if self.weights is None else self.weights @ x


def _dummies(codes: np.ndarray, drop_first: bool) -> np.ndarray:
    present = np.unique(codes)
    if drop_first:
        present = present[1:]
    return (codes[:, None] == present[None, :]).astype(np.float64)


def within_speaker_cells(codes: np.ndarray, n_levels: int, speakers: np.ndarray,
                         nuisance: np.ndarray | None = None) -> Rows:
    """Cells of a within-speaker factor: one row per (speaker, level present).

    codes [clips] level codes; speakers [clips]; nuisance [clips, k] integer
    codes of the speaker's other within-speaker factors, adjusted for by
    least squares inside each speaker (None: plain cell means). A speaker
    whose nuisance factors are confounded with the tested one (the design
    matrix loses rank) gets plain cell means and is listed in ``unadjusted``.
    """
    codes = np.asarray(codes)
    speaker_ids, speaker_index = np.unique(speakers, return_inverse=True)
    rows, row_codes, row_blocks, unadjusted = [], [], [], []
    for s, speaker in enumerate(speaker_ids):
        members = np.flatnonzero(speaker_index == s)
        levels = np.unique(codes[members])
        design = _dummies(codes[members], drop_first=False)
        if nuisance is not None and nuisance.shape[1] and len(levels) > 1:
            extra = [_dummies(column, drop_first=True) for column in nuisance[members].T]
            adjusted = np.concatenate([design, *extra], axis=1)
            if np.linalg.matrix_rank(adjusted) == adjusted.shape[1]:
                design = adjusted
            else:
                unadjusted.append(speaker)
        solve = np.linalg.pinv(design)[: len(levels)]  # [levels present, members]
        block = np.zeros((len(levels), len(codes)))
        block[:, members] = solve
        rows.append(block)
        row_codes.append(levels)
        row_blocks.append(np.full(len(levels), s))
    return Rows(np.concatenate(rows), np.concatenate(row_codes), np.concatenate(row_blocks),
                n_levels, tuple(unadjusted))


def speaker_means(codes: np.ndarray, n_levels: int, speakers: np.ndarray) -> Rows:
    """One row per speaker (the mean of its clips) for a between-speaker factor; one block.

    Raises ValueError when a speaker's clips carry more than one level.
    """
    codes = np.asarray(codes)
    speaker_ids, speaker_index = np.unique(speakers, return_inverse=True)
    counts = np.bincount(speaker_index)
    weights = (speaker_index[None, :] == np.arange(len(speaker_ids))[:, None]) / counts[:, None]
    first = np.zeros(len(speaker_ids), dtype=codes.dtype)
    first[speaker_index] = codes
    if (first[speaker_index] != codes).any():
        raise ValueError("a between-speaker factor must be constant within each speaker")
    return Rows(weights.astype(np.float64), first, np.zeros(len(speaker_ids), dtype=np.int64),
                n_levels)


def clip_rows(codes: np.ndarray, n_levels: int, speakers: np.ndarray) -> Rows:
    """Every clip its own row, blocked by speaker: the speaker-blocked F of clips."""
    codes = np.asarray(codes)
    return Rows(None, codes, np.unique(speakers, return_inverse=True)[1], n_levels)


@dataclass
class BlockedF:
    """F of the level term after the blocks, per unit ([units] arrays)."""

    f: np.ndarray
    p: np.ndarray
    df_level: int
    df_residual: int
    epsilon: np.ndarray  # the sphericity epsilon the p used (ones when uncorrected)


def sphericity_epsilon(values: np.ndarray, rows: Rows) -> np.ndarray:
    """[units] Huynh-Feldt epsilon (Lecoutre's form) from the blocks that hold every level once.

    For k levels and n complete blocks: S [k-1, k-1], the covariance over
    blocks of orthonormal contrasts of each block's cells; Greenhouse-Geisser
    gg = tr(S)^2 / ((k - 1) tr(S^2)); Huynh-Feldt
    ((n + 1)(k - 1) gg - 2) / ((k - 1)(n - 1 - (k - 1) gg)), clipped to
    [1 / (k - 1), 1]. Ones when k = 2 or fewer than two blocks are complete.
    """
    units = values.shape[1]
    levels = np.unique(rows.codes)
    k = len(levels)
    blocks, counts = np.unique(rows.blocks, return_counts=True)
    complete = [b for b, c in zip(blocks, counts) if c == k
                and set(rows.codes[rows.blocks == b]) == set(levels)]
    if k <= 2 or len(complete) < 2:
        return np.ones(units)
    cells = np.stack([values[rows.blocks == b][np.argsort(rows.codes[rows.blocks == b])]
                      for b in complete])  # [blocks, k, units]
    contrasts = np.linalg.qr(np.eye(k) - 1.0 / k)[0][:, : k - 1]  # orthonormal, rows sum to 0
    scores = np.einsum("bku,kj->bju", cells, contrasts)
    scores -= scores.mean(axis=0)
    cov = np.einsum("biu,bju->iju", scores, scores) / (len(complete) - 1)
    trace = np.einsum("iiu->u", cov)
    n = len(complete)
    with np.errstate(divide="ignore", invalid="ignore"):
        gg = trace**2 / ((k - 1) * (cov**2).sum(axis=(0, 1)))
        # Huynh-Feldt with Lecoutre's correction: less conservative than GG near 1
        epsilon = ((n + 1) * (k - 1) * gg - 2) / ((k - 1) * (n - 1 - (k - 1) * gg))
    return np.clip(np.nan_to_num(epsilon, nan=1.0), 1.0 / (k - 1), 1.0)


class _Design:
    """What a blocked F needs that does not depend on the values or the permutation."""

    def __init__(self, rows: Rows):
        self.rows = rows
        blocks = np.unique(rows.blocks, return_inverse=True)[1]
        self.blocks = blocks
        n_blocks = blocks.max() + 1
        counts = np.zeros((n_blocks, rows.n_levels))
        np.add.at(counts, (blocks, rows.codes), 1.0)
        block_sizes = counts.sum(axis=1)
        # information matrix of the level dummies after the block dummies: G'(I - P_blocks)G
        information = np.diag(counts.sum(axis=0)) - counts.T @ (counts / block_sizes[:, None])
        self.information_pinv = np.linalg.pinv(information, hermitian=True)
        self.df_level = int(np.linalg.matrix_rank(information, hermitian=True))
        self.df_residual = int(len(rows.codes) - n_blocks - self.df_level)
        self.block_sizes = block_sizes

    def centred(self, values: np.ndarray) -> np.ndarray:
        """Values minus their block's mean."""
        sums = np.zeros((len(self.block_sizes), values.shape[1]))
        np.add.at(sums, self.blocks, values)
        return values - (sums / self.block_sizes[:, None])[self.blocks]

    def ss_level(self, centred: np.ndarray, code_block: np.ndarray) -> np.ndarray:
        """[perms, rows] codes -> [perms, units] sums of squares of the level term."""
        perms, n = code_block.shape
        indicator = np.zeros((perms, self.rows.n_levels, n))
        indicator[np.arange(perms)[:, None], code_block, np.arange(n)[None, :]] = 1.0
        sums = (indicator.reshape(-1, n) @ centred).reshape(perms, self.rows.n_levels, -1)
        return np.einsum("pku,kl,plu->pu", sums, self.information_pinv, sums)


def blocked_f(values: np.ndarray, rows: Rows, sphericity: bool = False) -> BlockedF:
    """F of ``level`` after ``block`` for every column of values [rows, units].

    F equals statsmodels' ``anova_lm(ols("y ~ C(block) + C(level)"), typ=2)``
    row ``C(level)`` (tested); with ``sphericity`` (speaker x level cells)
    its p is Huynh-Feldt corrected (:func:`sphericity_epsilon`). NaN where there are no residual
    degrees of freedom or no level contrast.
    """
    design = _Design(rows)
    centred = design.centred(np.asarray(values, dtype=np.float64))
    ss_level = np.maximum(design.ss_level(centred, rows.codes[None, :])[0], 0.0)
    ss_residual = np.maximum((centred**2).sum(axis=0) - ss_level, 0.0)
    df1, df2 = design.df_level, design.df_residual
    ones = np.ones(values.shape[1])
    if df1 < 1 or df2 < 1:
        nan = np.full(values.shape[1], np.nan)
        return BlockedF(nan, nan.copy(), df1, df2, ones)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_level / df1) / (ss_residual / df2)
    epsilon = sphericity_epsilon(np.asarray(values, dtype=np.float64), rows) if sphericity else ones
    return BlockedF(f, stats.f.sf(f, epsilon * df1, epsilon * df2), df1, df2, epsilon)


def permute_within_blocks(codes: np.ndarray, blocks: np.ndarray, count: int,
                          rng: np.random.Generator) -> np.ndarray:
    """[count, rows]: ``count`` relabellings of codes, each a uniform shuffle inside every block."""
    codes = np.asarray(codes)
    blocks = np.unique(blocks, return_inverse=True)[1]
    home = np.argsort(blocks, kind="stable")  # rows in block order
    keys = blocks[home][None, :] + rng.random((count, len(codes)))  # shuffle inside each block
    shuffled = home[np.argsort(keys, axis=1, kind="stable")]
    out = np.empty((count, len(codes)), dtype=codes.dtype)
    out[:, home] = codes[shuffled]
    return out


def permutation_pvalues(values: np.ndarray, rows: Rows, permutations: int = 1000,
                        seed: int = 0, block: int = 25) -> np.ndarray:
    """[units] p-values of the blocked F, (1 + #{null >= observed}) / (1 + permutations).

    The rows' codes are shuffled within blocks; NaN where the F is undefined.
    """
    design = _Design(rows)
    units = values.shape[1]
    if design.df_level < 1 or design.df_residual < 1:
        return np.full(units, np.nan)
    centred = design.centred(np.asarray(values, dtype=np.float64))
    observed = design.ss_level(centred, rows.codes[None, :])[0]
    tolerance = 1e-9 * np.maximum(np.abs(observed), 1e-12)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(units, dtype=np.int64)
    done = 0
    while done < permutations:
        n = min(block, permutations - done)
        null = design.ss_level(centred, permute_within_blocks(rows.codes, rows.blocks, n, rng))
        exceed += (null >= observed - tolerance).sum(axis=0)
        done += n
    return (1 + exceed) / (1 + permutations)
