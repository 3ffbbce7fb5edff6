"""Speaker-general tests: the speaker is the unit of replication.

A claim that a unit "responds to a factor" is a claim about speakers not
recorded, so speakers' own ways of expressing each level (a speaker x level
interaction, a random slope) must count as noise, not as evidence. The tests
work on one row per speaker and level (a *cell*) or one row per speaker:

- a factor that varies **within** speakers (what was said, how, how
  strongly): per speaker, the value of each level, adjusted by least squares
  for the speaker's other within-speaker factors (so that a level recorded
  at one level of another factor only is compared at the same mix of that
  factor as the other levels; with a balanced design this is the plain cell
  mean). Each speaker that holds every level gives k - 1 orthonormal
  contrasts of its k cells, d_s; the factor is tested with Hotelling's T^2
  on those vectors (the multivariate approach to repeated measures, O'Brien
  & Kaiser 1985): exact under normal d_s whatever their covariance, so it
  needs no sphericity (a level with half the clips, level-dependent noise).
  For two levels it is the paired t over speakers (F = t^2). Speakers that
  lack a level are left out and counted. With no more complete speakers
  than contrasts T^2 is undefined; the univariate repeated-measures F is then
  used with the Greenhouse-Geisser lower-bound degrees of freedom (1, n - 1),
  valid whatever the covariance (Greenhouse & Geisser 1959).
- a factor that varies **between** speakers (such as sex): one row per
  speaker, its mean over clips; Welch's heteroscedastic one-way F over
  speakers (Welch 1951; for two levels Welch's t^2), since groups of
  speakers differ in size and spread in most corpora.

Permutation p-values use the same statistic under a relabelling that is
exact under the null however variances differ: for within-speaker factors,
sign flips of each speaker's whole contrast vector (valid when d_s is
symmetric about 0 under the null, any covariance, speaker-dependent noise
included; Winkler et al. 2014), enumerated exactly when 2^(n-1) flips are
no more than asked; for between-speaker factors, speakers' labels permuted
with the Welch statistic (a studentised permutation test, asymptotically
exact under unequal variances; Janssen 1997, Pauly et al. 2015). The
speaker-blocked F of clips (:func:`blocked_f` on :func:`clip_rows`) stays a
descriptive statistic: it asks whether *these* speakers' clips differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from speechneurons.stats.products import times_columns


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
        return x if self.weights is None else times_columns(self.weights, x)


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


def blocked_f(values: np.ndarray, rows: Rows) -> BlockedF:
    """F of ``level`` after ``block`` for every column of values [rows, units].

    F equals statsmodels' ``anova_lm(ols("y ~ C(block) + C(level)"), typ=2)``
    row ``C(level)`` (tested). NaN where there are no residual degrees of
    freedom or no level contrast.
    """
    values = np.asarray(values, dtype=np.float64)
    blocks = np.unique(rows.blocks, return_inverse=True)[1]
    n_blocks = blocks.max() + 1
    counts = np.zeros((n_blocks, rows.n_levels))
    np.add.at(counts, (blocks, rows.codes), 1.0)
    block_sizes = counts.sum(axis=1)
    # information matrix of the level dummies after the block dummies: G'(I - P_blocks)G
    information = np.diag(counts.sum(axis=0)) - counts.T @ (counts / block_sizes[:, None])
    df1 = int(np.linalg.matrix_rank(information, hermitian=True))
    df2 = int(len(rows.codes) - n_blocks - df1)
    if df1 < 1 or df2 < 1:
        nan = np.full(values.shape[1], np.nan)
        return BlockedF(nan, nan.copy(), df1, df2)
    sums = np.zeros((n_blocks, values.shape[1]))
    np.add.at(sums, blocks, values)
    centred = values - (sums / block_sizes[:, None])[blocks]
    level_sums = np.zeros((rows.n_levels, values.shape[1]))
    np.add.at(level_sums, rows.codes, centred)
    ss_level = np.maximum(np.einsum("ku,kl,lu->u", level_sums,
                                    np.linalg.pinv(information, hermitian=True), level_sums), 0.0)
    ss_residual = np.maximum((centred**2).sum(axis=0) - ss_level, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ss_level / df1) / (ss_residual / df2)
    return BlockedF(f, stats.f.sf(f, df1, df2), df1, df2)


# speaker-general tests -------------------------------------------------------

HOTELLING = "Hotelling T^2 on speakers' level contrasts"
PAIRED_T = "paired t over speakers (F = t^2)"
LOWER_BOUND = "repeated-measures F, lower-bound df (too few complete speakers for T^2)"
WELCH = "Welch F on speaker means"


@dataclass
class SpeakerTest:
    """A speaker-general test of one factor for every unit ([units] arrays).

    f, p: the statistic and its parametric p; p_perm: its permutation p;
    df_num, df_den: the degrees of freedom of p (0 when untestable, and then
    f, p and p_perm are NaN); n_speakers: speakers the test used;
    left_out: speakers left out (within: lacking a level; between: none);
    name: which test; df_den_each: Welch's denominator df of each unit (between-speaker factors;
    df_den is their median), None for the other tests.
    """

    f: np.ndarray
    p: np.ndarray
    p_perm: np.ndarray
    df_num: int
    df_den: int
    n_speakers: int
    left_out: int
    name: str
    df_den_each: np.ndarray | None = None


def median_df(each: np.ndarray) -> int:
    """The denominator df a Welch test reports for many units: the median of theirs (0: none)."""
    return int(np.nanmedian(each)) if np.isfinite(each).any() else 0


def _untestable(units: int, n_speakers: int, left_out: int, name: str) -> SpeakerTest:
    nan = np.full(units, np.nan)
    return SpeakerTest(nan, nan.copy(), nan.copy(), 0, 0, n_speakers, left_out, name)


def complete_contrasts(values: np.ndarray, rows: Rows) -> tuple[np.ndarray, int]:
    """(scores [speakers, k - 1, units], speakers left out): orthonormal contrasts of the cells of
    every block (speaker) that holds each of the k levels present once."""
    levels = np.unique(rows.codes)
    k = len(levels)
    blocks = np.unique(rows.blocks)
    complete = [b for b in blocks if np.array_equal(np.sort(rows.codes[rows.blocks == b]), levels)]
    if k < 2 or not complete:
        return np.zeros((0, max(k - 1, 0), values.shape[1])), len(blocks) - len(complete)
    cells = np.stack([values[rows.blocks == b][np.argsort(rows.codes[rows.blocks == b])]
                      for b in complete])  # [speakers, k, units]
    contrasts = np.linalg.qr(np.eye(k) - 1.0 / k)[0][:, : k - 1]  # orthonormal, columns sum to 0
    return np.einsum("sku,kj->sju", cells, contrasts), len(blocks) - len(complete)


def level_contrasts(values: np.ndarray, rows: Rows, code: int) -> np.ndarray:
    """[speakers, units] per block (speaker) holding level ``code`` and another: the level's cell
    minus the mean of the block's other cells (values [rows, units], cells of a within-speaker
    factor); speakers without the level or another are left out."""
    out = []
    for block in np.unique(rows.blocks):
        mine = rows.blocks == block
        at = mine & (rows.codes == code)
        if at.any() and mine.sum() > 1:
            out.append(values[at][0] - values[mine & ~at].mean(axis=0))
    return np.stack(out) if out else np.zeros((0, values.shape[1]))


def _whiten(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z [n, p, units] with sum_s z_s z_s' = I, full rank [units]): z_s = M^(-1/2) d_s, M = sum_s d_s d_s'."""
    m = np.einsum("npu,nqu->upq", scores, scores)
    w, v = np.linalg.eigh(m)
    ok = w[:, 0] > 1e-10 * np.maximum(w[:, -1], 1e-300)
    scale = np.where(ok[:, None], 1.0 / np.sqrt(np.where(ok[:, None], w, 1.0)), 0.0)  # [units, p]
    return np.einsum("upq,npu->nqu", v, scores) * scale.T[None], ok


def sign_flips(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """([flips, n] of +-1, exact): every flip with the first speaker at +1 when there are at most
    ``count`` of them (2^(n-1); a flip and its negation give the same statistic), else ``count``
    uniform random flips."""
    if n - 1 <= 20 and 2 ** (n - 1) <= count:
        grid = (np.arange(2 ** (n - 1))[:, None] >> np.arange(n - 1)[None, :]) & 1
        return np.concatenate([np.ones((len(grid), 1)), 1.0 - 2.0 * grid], axis=1), True
    return rng.choice([-1.0, 1.0], size=(count, n)), False


def _flip_pvalues(z: np.ndarray, observed: np.ndarray, permutations: int, seed: int,
                  block: int = 50) -> np.ndarray:
    """Sign-flip p of the statistic ||sum_s e_s z_s||^2 (observed: e = 1), per unit."""
    n = z.shape[0]
    flat = z.reshape(n, -1)
    flips, exact = sign_flips(n, permutations, np.random.default_rng(seed))
    tolerance = 1e-9 * np.maximum(np.abs(observed), 1e-12)
    exceed = np.zeros(z.shape[2], dtype=np.int64)
    for start in range(0, len(flips), block):
        sums = times_columns(flips[start:start + block], flat).reshape(-1, *z.shape[1:])
        exceed += ((sums**2).sum(axis=1) >= observed - tolerance).sum(axis=0)
    return exceed / len(flips) if exact else (1 + exceed) / (1 + len(flips))


def within_speaker_test(values: np.ndarray, rows: Rows, permutations: int = 1000,
                        seed: int = 0) -> SpeakerTest:
    """Hotelling's T^2 (F form) of a within-speaker factor on its cells values [rows, units].

    With n complete speakers and p = k - 1 contrasts: F = (n - p) / p * a / (n - a), where
    a = u'M^-1 u, u = sum_s d_s and M = sum_s d_s d_s' (Sherman-Morrison on the sample
    covariance), on (p, n - p) df; p_perm flips the sign of whole d_s. When n <= p: the
    univariate F = (n - 1)(b / n) / (T - b / n), b = |u|^2, T = sum_s |d_s|^2, on the
    lower-bound df (1, n - 1), flipped the same way. Units whose contrasts do not span their
    space (constant units) are NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    scores, left_out = complete_contrasts(values, rows)
    n, p, units = scores.shape
    if n < 2 or p < 1:
        return _untestable(units, n, left_out, HOTELLING if p > 1 else PAIRED_T)
    if n > p:
        z, ok = _whiten(scores)
        a = (z.sum(axis=0) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(ok, (n - p) / p * a / np.maximum(n - a, 0.0), np.nan)
        p_perm = np.where(ok, _flip_pvalues(z, a, permutations, seed), np.nan)
        return SpeakerTest(f, stats.f.sf(f, p, n - p), p_perm, p, n - p, n, left_out,
                           HOTELLING if p > 1 else PAIRED_T)
    total = (scores**2).sum(axis=(0, 1))
    b = (scores.sum(axis=0) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(total > 0, (n - 1) * (b / n) / (total - b / n), np.nan)
        z = scores / np.sqrt(np.where(total > 0, total, 1.0))[None, None]
    p_perm = np.where(total > 0, _flip_pvalues(z, b / np.where(total > 0, total, 1.0), permutations,
                                                 seed), np.nan)
    return SpeakerTest(f, stats.f.sf(f, 1, n - 1), p_perm, 1, n - 1, n, left_out, LOWER_BOUND)


def welch_f(values: np.ndarray, indicator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch's one-way F and its denominator df: values [rows, units], indicator [perms, k, rows]
    (each row in one level; every level with two rows or more) -> ([perms, units], [perms, units])."""
    counts = indicator.sum(axis=2)[:, :, None]  # [perms, k, 1]
    k = indicator.shape[1]
    means = times_columns(indicator, values) / counts
    var = (times_columns(indicator, values**2) - counts * means**2) / (counts - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = counts / var
        total = w.sum(axis=1, keepdims=True)
        centre = (w * means).sum(axis=1, keepdims=True) / total
        between = (w * (means - centre) ** 2).sum(axis=1) / (k - 1)
        lam = ((1 - w / total) ** 2 / (counts - 1)).sum(axis=1)
        f = between / (1 + 2 * (k - 2) * lam / (k**2 - 1))
        return f, (k**2 - 1) / (3 * lam)


def between_speaker_test(values: np.ndarray, rows: Rows, permutations: int = 1000,
                         seed: int = 0, block: int = 50) -> SpeakerTest:
    """Welch's F of a between-speaker factor on speaker means values [speakers, units]; p_perm
    permutes the speakers' labels (same statistic). Untestable when a level has fewer than two
    speakers."""
    values = np.asarray(values, dtype=np.float64)
    levels, codes = np.unique(rows.codes, return_inverse=True)
    n, k = len(codes), len(levels)
    if k < 2 or np.bincount(codes).min() < 2:
        return _untestable(values.shape[1], n, 0, WELCH)

    def indicator(labels: np.ndarray) -> np.ndarray:
        return (labels[:, None, :] == np.arange(k)[None, :, None]).astype(np.float64)

    f, df2 = welch_f(values, indicator(codes[None]))
    f, df2 = f[0], df2[0]
    rng = np.random.default_rng(seed)
    exceed = np.zeros(values.shape[1], dtype=np.int64)
    tolerance = 1e-9 * np.maximum(np.abs(f), 1e-12)
    done = 0
    while done < permutations:
        count = min(block, permutations - done)
        shuffled = np.stack([rng.permutation(codes) for _ in range(count)])
        null, _ = welch_f(values, indicator(shuffled))
        exceed += (null >= f - tolerance).sum(axis=0)
        done += count
    p_perm = np.where(np.isfinite(f), (1 + exceed) / (1 + permutations), np.nan)
    return SpeakerTest(f, stats.f.sf(f, k - 1, df2), p_perm, k - 1, median_df(df2), n, 0, WELCH, df2)


def speaker_general_test(values: np.ndarray, rows: Rows, within: bool, permutations: int = 1000,
                         seed: int = 0) -> SpeakerTest:
    """:func:`within_speaker_test` on cells, or :func:`between_speaker_test` on speaker means."""
    test = within_speaker_test if within else between_speaker_test
    return test(values, rows, permutations, seed)
