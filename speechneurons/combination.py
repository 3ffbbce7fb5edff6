"""One ablation parameter combination: a baseline, a segment length and a reduction.

Every stage that reads or writes per-combination results uses this one
representation: the ablation job gets it from its wildcards, the reliability
checks from their params, the tables carry its columns, and the results of
each lie in its own folder (:data:`FOLDER`), so that adding a value to a list
in the config runs only the new combination's jobs. Plain Python (the
Snakefile imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

#: A combination's results folder, as a Snakemake wildcard pattern.
FOLDER = "baseline~{baseline}/segment_ms~{segment_ms}/reduction~{reduction}"


@dataclass(frozen=True)
class Combination:
    """One ablation parameter combination (one results folder)."""

    baseline: str
    segment_ms: int
    reduction: str

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> "Combination":
        """From {baseline, segment_ms, reduction}: a rule's params or a job's wildcards."""
        return cls(str(values["baseline"]), int(values["segment_ms"]), str(values["reduction"]))

    @property
    def label(self) -> str:
        return f"{self.baseline}, {self.segment_ms} ms, {self.reduction}"

    def columns(self) -> dict[str, Any]:
        """The combination as table columns (and as a params dict)."""
        return {"baseline": self.baseline, "segment_ms": self.segment_ms, "reduction": self.reduction}

    @property
    def folder(self) -> str:
        return FOLDER.format(**self.columns())


def combination_grid(ablation: Mapping[str, Any]) -> list[Combination]:
    """Every combination of the ``ablation`` section's lists (baselines x segment_ms x
    reductions), the first of each list first."""
    return [Combination(str(b), int(s), str(r)) for b, s, r in
            product(ablation["baselines"], ablation["segment_ms"], ablation["reductions"])]
