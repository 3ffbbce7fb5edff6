"""Settings dataclasses built from their config section, key for key.

A rule passes a settings class exactly the keys of its config section that the
class reads (``rules/common.smk::section``), so that a job's params change, and
the job reruns, exactly when one of its settings does. :meth:`FromConfig.from_config`
holds the other end: a key the class does not read, or a setting the section
does not give, is an error naming the section, so that the rule and the class
cannot drift apart unnoticed. Plain Python (the Snakefile may import it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar


#: The ``ablation`` keys that say which units to ablate (``units_from`` selection or config, and
#: the config's ``sites``, ``layers``, ``neurons``).
ABLATION_UNITS = ("units_from", "sites", "layers", "neurons")


def check_section(owner: str, section: str, passed: set[str], reads: set[str],
                  given: set[str] = frozenset()) -> None:
    """Raise ValueError when the keys a rule ``passed`` of config ``section`` are not exactly
    those ``owner`` ``reads`` (less the ones ``given`` from elsewhere), naming each key."""
    unknown = sorted(passed - reads)
    missing = sorted(reads - passed - given)
    if unknown or missing:
        raise ValueError(
            f"{owner} reads the config section {section}: "
            + "; ".join([*(f"it has no setting {section}.{k}" for k in unknown),
                         *(f"{section}.{k} was not passed" for k in missing)])
            + " (the rule's params must pass exactly the keys it reads)")


class FromConfig:
    """Mixin for a frozen dataclass whose fields are the keys of one config section.

    Subclasses set :attr:`SECTION` (its dotted path, for errors). A field whose
    annotation names a tuple takes a YAML list as a tuple; one whose annotation
    admits None takes the word ``all`` as None (``layers: all``).
    """

    #: The config section's dotted path, e.g. ``reliability.deletion``.
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_config(cls, section: Mapping[str, Any], **given: Any):
        """The settings of ``section``, with ``given`` for the fields another section or the
        job supplies (e.g. the selection's ``fdr_alpha``, which is ``stats``'s).

        Raises
        ------
        ValueError
            When ``section`` holds a key that is not a field of the class, or lacks a
            field that ``given`` does not supply.
        """
        declared = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        check_section(cls.__name__, cls.SECTION, set(section), set(declared), set(given))
        values = {}
        for name, value in section.items():
            kind = str(declared[name].type)
            if value == "all" and "None" in kind:
                value = None
            elif isinstance(value, list) and kind.startswith("tuple"):
                value = tuple(value)
            values[name] = value
        return cls(**values, **given)
