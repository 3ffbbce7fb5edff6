"""What a corpus declares: its speaker column, its factors and the role each plays.

Every stage after the index (filters, statistics and their permutation
schemes, the mixed model, selection, the question tables, figures, report
texts, listening page, CLI) reads factor names and levels from a
:class:`CorpusSpec`, never from one corpus's vocabulary. A corpus module
(``speechneurons/datasets/<name>.py``) declares ``SPEC`` and ``describe``;
:func:`speechneurons.datasets.load_corpus` finds it by name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

#: the clips table's speaker column in every corpus (the unit of replication)
SPEAKER = "speaker"


@dataclass(frozen=True)
class Factor:
    """One factor of a corpus: its column, its ordered levels and how it varies.

    ``varies``: "within" (each speaker records several levels: what is said,
    how, how strongly) or "between" (a property of the speaker, such as sex).
    For two levels, contrasts are second - first.
    """

    name: str
    levels: tuple
    varies: Literal["within", "between"]
    description: str = ""

    def __post_init__(self) -> None:
        if self.varies not in ("within", "between"):
            raise ValueError(f"factor {self.name}: varies must be 'within' or 'between', "
                             f"not {self.varies!r}")
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"factor {self.name}: levels repeat: {list(self.levels)}")


@dataclass(frozen=True)
class CorpusSpec:
    """A corpus's design, as every downstream stage reads it.

    target: the factor whose levels each get their top units (selection,
    question 2, the listening page); group: the between-speaker factor of
    question 4 (None: not asked); graded: (factor, low, high) of question 5,
    paired within speaker and the other within-speaker factors (None: not
    asked). filter_aliases: extra ``dataset.filters`` keys -> column;
    filterable: other clip columns a filter may name -> allowed values
    (None: any). default_filters: applied unless the config names the key.
    """

    name: str
    factors: tuple[Factor, ...]
    target: str
    group: str | None = None
    graded: tuple[str, Any, Any] | None = None
    filter_aliases: dict[str, str] = field(default_factory=dict)
    filterable: dict[str, tuple | None] = field(default_factory=dict)
    default_filters: dict[str, list] = field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.factors]
        if self.target not in names:
            raise ValueError(f"corpus {self.name}: target {self.target!r} is not a factor ({names})")
        if self.group is not None and self.factor(self.group).varies != "between":
            raise ValueError(f"corpus {self.name}: group {self.group!r} must vary between speakers")
        if self.graded is not None:
            factor = self.factor(self.graded[0])
            if factor.varies != "within" or not set(self.graded[1:]) <= set(factor.levels):
                raise ValueError(f"corpus {self.name}: graded {self.graded} must name a within-speaker "
                                 "factor and two of its levels")

    def factor(self, name: str) -> Factor:
        for factor in self.factors:
            if factor.name == name:
                return factor
        raise KeyError(f"corpus {self.name} has no factor {name!r}; its factors: "
                       f"{[f.name for f in self.factors]}")

    @property
    def factor_names(self) -> list[str]:
        return [f.name for f in self.factors]

    def within(self) -> list[str]:
        return [f.name for f in self.factors if f.varies == "within"]

    def levels(self, name: str) -> list:
        return list(self.factor(name).levels)

    @property
    def columns(self) -> list[str]:
        """Metadata columns of the clips table after clip_id and path."""
        return [SPEAKER, *self.factor_names, *self.extra_columns]

    def filter_keys(self) -> dict[str, str]:
        """``dataset.filters`` key -> clips column."""
        keys = {name: name for name in self.factor_names}
        keys.update({name: name for name in self.filterable})
        keys["speakers"] = SPEAKER
        keys.update(self.filter_aliases)
        return keys

    def allowed(self, column: str) -> set | None:
        """The values a filter on ``column`` may name (None: any)."""
        if column in self.factor_names:
            return set(self.factor(column).levels)
        return set(self.filterable[column]) if self.filterable.get(column) is not None else None

    def describe(self) -> str:
        """One line per factor, for logs and the README."""
        return "; ".join(f"{f.name} ({f.varies}: {', '.join(map(str, f.levels))})" for f in self.factors)


def nearest(key: str, valid: list[str]) -> str:
    """' (did you mean X?)' for the closest valid key, or ''."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
