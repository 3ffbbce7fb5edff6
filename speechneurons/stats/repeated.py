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
  mean). Each speaker that holds every level, each cell resting on at least
  ``stats.min_clips_per_cell`` clips, gives k - 1 orthonormal contrasts of
  its k cells, d_s; the factor is tested with the univariate
  repeated-measures F on those contrasts (level after speaker on the cells),
  whose p comes from sign flips of each speaker's whole d_s: exact whatever
  the contrasts' covariance, so it needs no sphericity (a level with half the
  clips, level-dependent noise; Winkler et al. 2014). The flips are resolved
  where Benjamini-Hochberg decides: units whose first flips leave them
  candidates get more, sequentially (Besag & Clifford 1991), until the
  smallest p can pass BH's first threshold. It replaced Hotelling's T^2 on
  the same contrasts (O'Brien & Kaiser 1985), which spends p (p + 1) / 2
  covariance parameters on n speakers and found 19 % of the units with a
  +0.5 SD effect on one level against this test's 46 % (docs/calibration.md;
  Algina & Keselman 1997 on when the univariate approach is the more
  powerful). The parametric p beside it uses Greenhouse-Geisser df
  (Greenhouse & Geisser 1959), conservative; it decides nothing. For two
  levels the F is the paired t^2 over speakers. Speakers that lack a level
  or hold a thinner cell are left out and counted.
- a factor that varies **between** speakers (such as sex): one row per
  speaker, its mean over clips; Welch's heteroscedastic one-way F over
  speakers (Welch 1951; for two levels Welch's t^2), since groups of
  speakers differ in size and spread in most corpora.

Permutation p-values use the same statistic under a relabelling that is
exact under the null however variances differ: for within-speaker factors,
sign flips of each speaker's whole contrast vector (valid when d_s is
symmetric about 0 under the null, any covariance, speaker-dependent noise
included; Winkler et al. 2014), enumerated exactly when 2^(n-1) flips are
no more than asked (the smallest p is then 2^-(n-1)); for between-speaker factors, speakers' labels permuted
with the Welch statistic (a studentised permutation test, asymptotically
exact under unequal variances; Janssen 1997, Pauly et al. 2015). The
speaker-blocked F of clips (:func:`blocked_f` on :func:`clip_rows`) stays a
descriptive statistic: it asks whether *these* speakers' clips differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from speechneurons.stats.products import CHUNK, times_columns


@dataclass(frozen=True)
class Rows:
    """The rows a speaker-general test works on: ``values = weights @ x``.

    weights [rows, clips], or None when the rows are the clips themselves;
    codes [rows] level of each row; blocks [rows]
    exchangeability block (the speaker for cells; 0 for speaker means);
    unadjusted: speakers whose cells are plain means because their other
    factors could not be separated from the tested one; counts [rows]: clips
    behind each row (cells), None when every row is one clip or a speaker mean.
    """

    weights: np.ndarray | None
    codes: np.ndarray
    blocks: np.ndarray
    n_levels: int
    unadjusted: tuple = ()
    counts: np.ndarray | None = None

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
    rows, row_codes, row_blocks, row_counts, unadjusted = [], [], [], [], []
    for s, speaker in enumerate(speaker_ids):
        members = np.flatnonzero(speaker_index == s)
        levels, clips_at = np.unique(codes[members], return_counts=True)
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
        row_counts.append(clips_at)
    return Rows(np.concatenate(rows), np.concatenate(row_codes), np.concatenate(row_blocks),
                n_levels, tuple(unadjusted), np.concatenate(row_counts))


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

REPEATED_F = "repeated-measures F on speakers' level contrasts (sign-flip p)"
PAIRED_T = "paired t over speakers (F = t^2)"
#: too few speakers for the flips' smallest p, 2^-(n-1), to reach BH's threshold: the parametric p decides
TOO_FEW_FOR_FLIPS = "; too few speakers for sign flips to reach the FDR threshold, the parametric p decides"
WELCH = "Welch F on speaker means"
#: the tests whose sign-flip p_perm decides ``selective`` (q_perm < alpha)
FLIPS_DECIDE = (REPEATED_F, PAIRED_T)

#: Besag & Clifford's h: a unit's extra flips stop at its h-th exceedance (p = h / flips drawn)
STOP_AT = 20
#: sign flips per product in the tail (each drawn from the seed and the chunk's index alone)
FLIP_CHUNK = 4096


@dataclass
class SpeakerTest:
    """A speaker-general test of one factor for every unit ([units] arrays).

    f, p: the statistic and its parametric p; p_perm: its permutation p;
    df_num, df_den: the degrees of freedom of p (0 when untestable, and then
    f, p and p_perm are NaN); n_speakers: speakers the test used;
    left_out: speakers left out (within: lacking a level, or holding a cell of
    fewer than ``min_clips`` clips; between: none); thin_cells: cells below
    ``min_clips`` (within); name: which test; df_den_each: Welch's denominator
    df of each unit (between-speaker factors; df_den is their median), None for
    the other tests; epsilon: the Greenhouse-Geisser epsilon of each unit
    (within, more than two levels: p uses df (eps df_num, eps df_den)), None for
    the other tests.
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
    epsilon: np.ndarray | None = None
    thin_cells: int = 0


def median_df(each: np.ndarray) -> int:
    """The denominator df a Welch test reports for many units: the median of theirs (0: none)."""
    return int(np.nanmedian(each)) if np.isfinite(each).any() else 0


def _untestable(units: int, n_speakers: int, left_out: int, name: str, thin_cells: int = 0) -> SpeakerTest:
    nan = np.full(units, np.nan)
    return SpeakerTest(nan, nan.copy(), nan.copy(), 0, 0, n_speakers, left_out, name, thin_cells=thin_cells)


def complete_blocks(rows: Rows, min_clips: int = 1) -> tuple[list, int, int]:
    """(blocks (speakers) that hold each level present once with at least ``min_clips`` clips,
    blocks left out, cells below ``min_clips``)."""
    levels = np.unique(rows.codes)
    blocks = np.unique(rows.blocks)
    counts = np.full(len(rows.codes), np.inf) if rows.counts is None else rows.counts
    thin = counts < min_clips
    complete = [b for b in blocks if np.array_equal(np.sort(rows.codes[rows.blocks == b]), levels)
                and not thin[rows.blocks == b].any()]
    return complete, len(blocks) - len(complete), int(thin.sum())


def complete_contrasts(values: np.ndarray, rows: Rows, min_clips: int = 1) -> tuple[np.ndarray, int]:
    """(scores [speakers, k - 1, units], speakers left out): orthonormal contrasts of the cells of
    every block (speaker) that holds each of the k levels present once, each cell resting on at
    least ``min_clips`` clips."""
    levels = np.unique(rows.codes)
    k = len(levels)
    complete, left_out, _ = complete_blocks(rows, min_clips)
    if k < 2 or not complete:
        return np.zeros((0, max(k - 1, 0), values.shape[1])), left_out
    cells = np.stack([values[rows.blocks == b][np.argsort(rows.codes[rows.blocks == b])]
                      for b in complete])  # [speakers, k, units]
    contrasts = np.linalg.qr(np.eye(k) - 1.0 / k)[0][:, : k - 1]  # orthonormal, columns sum to 0
    return np.einsum("sku,kj->sju", cells, contrasts), left_out


def level_contrasts(values: np.ndarray, rows: Rows, code: int, min_clips: int = 1) -> np.ndarray:
    """[speakers, units] per block (speaker) holding level ``code`` and another: the level's cell
    minus the mean of the block's other cells (values [rows, units], cells of a within-speaker
    factor); speakers without the level or another, or whose level cell rests on fewer than
    ``min_clips`` clips, are left out (other cells below it are left out of the mean)."""
    counts = np.full(len(rows.codes), np.inf) if rows.counts is None else rows.counts
    usable = counts >= min_clips
    out = []
    for block in np.unique(rows.blocks):
        mine = (rows.blocks == block) & usable
        at = mine & (rows.codes == code)
        if at.any() and mine.sum() > 1:
            out.append(values[at][0] - values[mine & ~at].mean(axis=0))
    return np.stack(out) if out else np.zeros((0, values.shape[1]))


def sign_flips(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """([flips, n] of +-1, exact): every flip with the first speaker at +1 when there are at most
    ``count`` of them (2^(n-1); a flip and its negation give the same statistic), else ``count``
    uniform random flips."""
    if n - 1 <= 20 and 2 ** (n - 1) <= count:
        return _enumerated(n, 0, 2 ** (n - 1)), True
    return rng.choice([-1.0, 1.0], size=(count, n)), False


def _enumerated(n: int, start: int, stop: int) -> np.ndarray:
    """Flips start..stop-1 of the 2^(n-1) with the first speaker at +1 ([stop - start, n])."""
    grid = (np.arange(start, stop, dtype=np.int64)[:, None] >> np.arange(n - 1)[None, :]) & 1
    return np.concatenate([np.ones((len(grid), 1)), 1.0 - 2.0 * grid], axis=1)


def _statistics(flips: np.ndarray, z: np.ndarray) -> np.ndarray:
    """[flips, units] ||sum_s e_s z_s||^2 for flips [F, n] and z [n, p, units]."""
    n, p, units = z.shape
    sums = times_columns(flips, z.reshape(n, -1)).reshape(len(flips), p, units)
    return (sums**2).sum(axis=1)


def _exact_tail(z: np.ndarray, observed: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Exact p over all 2^(n-1) flips, per unit of z [n, p, units]."""
    n = z.shape[0]
    total = 2 ** (n - 1)
    exceed = np.zeros(z.shape[2], dtype=np.int64)
    for start in range(0, total, FLIP_CHUNK):
        stats_ = _statistics(_enumerated(n, start, min(start + FLIP_CHUNK, total)), z)
        exceed += (stats_ >= observed - tolerance).sum(axis=0)
    return exceed / total


def _sequential_tail(z: np.ndarray, observed: np.ndarray, tolerance: np.ndarray, exceed: np.ndarray,
                     drawn: int, seed: int, cap: int) -> np.ndarray:
    """Besag & Clifford's sequential p per unit of z [n, p, units], continuing from ``exceed``
    exceedances in ``drawn`` flips: more flips until a unit's :data:`STOP_AT`-th exceedance (p = h
    / flips so far) or ``cap`` flips in all (p = (1 + exceedances) / (1 + cap))."""
    n = z.shape[0]
    count = exceed.astype(np.int64).copy()
    p = np.full(z.shape[2], np.nan)
    active = np.arange(z.shape[2])
    chunk = 0
    while active.size and drawn < cap:
        draw = np.random.default_rng([seed, 1, chunk]).integers(0, 2, size=(FLIP_CHUNK, n))
        flips = (1.0 - 2.0 * draw)[: cap - drawn]
        hits = _statistics(flips, z[:, :, active]) >= observed[active] - tolerance[active]
        running = count[active][None, :] + np.cumsum(hits, axis=0)
        reached = running[-1] >= STOP_AT
        if reached.any():
            first = np.argmax(running[:, reached] >= STOP_AT, axis=0)
            p[active[reached]] = STOP_AT / (drawn + first + 1)
        count[active] = running[-1]
        active = active[~reached]
        drawn += len(flips)
        chunk += 1
    p[active] = (1 + count[active]) / (1 + drawn)
    return p


def flip_pvalues(z: np.ndarray, observed: np.ndarray, permutations: int, seed: int,
                 tail_flips: int = 0, block: int = 50) -> np.ndarray:
    """Sign-flip p of the statistic ||sum_s e_s z_s||^2 (observed: e = 1) per unit of z [n, p, units].

    First ``permutations`` flips for every unit (all 2^(n-1) when there are no more: then p is
    exact). Units with fewer than :data:`STOP_AT` exceedances there (the candidates for a
    discovery) get more flips, up to ``tail_flips`` in all: all 2^(n-1) when there are no more
    than that (exact p), else drawn sequentially (Besag & Clifford 1991). Both keep the p valid:
    below (h + 1) / (permutations + 1) it is the sequential (or exact) p, above it the first
    stage's (1 + exceedances) / (1 + permutations), and each is valid there. Every flip comes from
    the seed alone, so a unit's p depends on its own column only.
    """
    n = z.shape[0]
    flips, exact = sign_flips(n, permutations, np.random.default_rng(seed))
    tolerance = 1e-9 * np.maximum(np.abs(observed), 1e-12)
    exceed = np.zeros(z.shape[2], dtype=np.int64)
    for start in range(0, len(flips), block):
        exceed += (_statistics(flips[start:start + block], z) >= observed - tolerance).sum(axis=0)
    if exact:
        return exceed / len(flips)
    p = (1 + exceed) / (1 + len(flips))
    if tail_flips <= len(flips):
        return p
    candidates = np.flatnonzero((exceed < STOP_AT) & np.isfinite(observed))
    group = max(1, CHUNK // z.shape[1])  # units per product: the columns of one padded product
    for start in range(0, len(candidates), group):
        these = candidates[start:start + group]
        if not flips_exceed(n, tail_flips):
            p[these] = _exact_tail(z[:, :, these], observed[these], tolerance[these])
        else:
            p[these] = _sequential_tail(z[:, :, these], observed[these], tolerance[these], exceed[these],
                                        len(flips), seed, tail_flips)
    return p


def flips_exceed(n: int, count: int) -> bool:
    """Whether n speakers have more than ``count`` distinct sign flips (2^(n-1))."""
    return n - 1 >= 62 or 2 ** (n - 1) > count


def tail_flips_for(units: int, alpha: float) -> int:
    """Flips the tail needs so that the smallest p, 1 / (flips + 1), is below BH's first threshold
    alpha / units: a single discovery among ``units`` is possible."""
    return int(np.ceil(units / alpha))


def greenhouse_geisser(scores: np.ndarray) -> np.ndarray:
    """[units] Greenhouse-Geisser epsilon of scores [n, p, units] (orthonormal contrasts):
    tr(S)^2 / (p tr(S^2)) of their covariance S, within [1 / p, 1]."""
    n, p, _ = scores.shape
    centred = scores - scores.mean(axis=0, keepdims=True)
    s = np.einsum("npu,nqu->upq", centred, centred) / max(n - 1, 1)
    trace = np.einsum("upp->u", s)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = trace**2 / (p * np.einsum("upq,uqp->u", s, s))
    return np.clip(np.nan_to_num(eps, nan=1.0), 1.0 / p, 1.0)


def within_speaker_test(values: np.ndarray, rows: Rows, permutations: int = 1000, seed: int = 0,
                        tail_flips: int = 0, min_clips: int = 1) -> SpeakerTest:
    """The repeated-measures F of a within-speaker factor on its cells values [rows, units], with
    an exact sign-flip p.

    With n complete speakers (every level, each cell of at least ``min_clips`` clips) and their
    p = k - 1 orthonormal contrasts d_s: F = (n - 1)(b / n) / (T - b / n), b = |sum_s d_s|^2,
    T = sum_s |d_s|^2 (the univariate F of level after speaker on the cells; for two levels the
    paired t^2). p_perm flips the sign of each speaker's whole d_s (:func:`flip_pvalues`; T does
    not change under a flip, so b is the statistic): exact whatever the contrasts' covariance
    (Winkler et al. 2014), with ``tail_flips`` resolving the tail. p: the F on Greenhouse-Geisser
    df (eps p, eps p (n - 1)), conservative, printed beside it; when even all 2^(n-1) flips
    stay above 1 / ``tail_flips`` (too few speakers for the flips to reach BH's threshold) the
    name says that the parametric p decides (:data:`TOO_FEW_FOR_FLIPS`). Units whose contrasts are
    all 0 (constant units) are NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    _, _, thin = complete_blocks(rows, min_clips)
    scores, left_out = complete_contrasts(values, rows, min_clips)
    n, p, units = scores.shape
    name = PAIRED_T if p == 1 else REPEATED_F
    if n < 2 or p < 1:
        return _untestable(units, n, left_out, name, thin)
    if tail_flips and not flips_exceed(n, tail_flips - 1):  # all 2^(n-1) flips fewer than the tail needs
        name += TOO_FEW_FOR_FLIPS
    total = (scores**2).sum(axis=(0, 1))
    ok = total > 1e-20 * np.maximum((values**2).sum(axis=0), 1e-300)
    safe = np.where(ok, total, 1.0)
    b = (scores.sum(axis=0) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(ok, (n - 1) * (b / n) / (total - b / n), np.nan)
    eps = greenhouse_geisser(scores)
    p_value = stats.f.sf(f, eps * p, eps * p * (n - 1))
    z = scores / np.sqrt(safe)[None, None]
    p_perm = np.where(ok, flip_pvalues(z, np.where(ok, b / safe, np.nan), permutations, seed, tail_flips),
                      np.nan)
    return SpeakerTest(f, p_value, p_perm, p, p * (n - 1), n, left_out, name,
                       epsilon=eps if p > 1 else None, thin_cells=thin)


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
                         seed: int = 0, tail_flips: int = 0, min_clips: int = 1) -> SpeakerTest:
    """:func:`within_speaker_test` on cells (``tail_flips``, ``min_clips``), or
    :func:`between_speaker_test` on speaker means."""
    if within:
        return within_speaker_test(values, rows, permutations, seed, tail_flips, min_clips)
    return between_speaker_test(values, rows, permutations, seed)
