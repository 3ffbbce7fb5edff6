"""The supported model families, one file each: ``speechneurons/models/families/<name>.py``.

A family file declares ``FAMILY`` (:class:`~speechneurons.models.families.base.Family`
or a subclass that overrides the hooks where the family's layout differs);
the file's name is its ``model_type`` with ``-`` written ``_``. The families
are found by listing this folder, as the corpora are, so adding a family is
that one file and its test layout (``tests/test_models.py::LAYOUTS``).
Every family file counts in the code hash of a script that loads a model
(:data:`DISCOVERS_ITS_MODULES`, read by :mod:`speechneurons.codehash`).
"""

from __future__ import annotations

import importlib
import pkgutil

from speechneurons.models.families.base import Family

#: read by speechneurons.codehash: every module of this package counts as imported by it
DISCOVERS_ITS_MODULES = True

#: modules of this package that are not families
_NOT_FAMILIES = {"base"}


def _discover() -> dict[str, Family]:
    found = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_FAMILIES):
        family = importlib.import_module(f"{__name__}.{module}").FAMILY
        if family.model_type.replace("-", "_") != module:
            raise ImportError(f"speechneurons/models/families/{module}.py declares model_type "
                              f"{family.model_type!r}: name the file after it")
        found[family.model_type] = family
    return found


#: model_type -> family, for every family file
FAMILIES: dict[str, Family] = _discover()


def family_of(model_type: str, name_or_path: str = "") -> Family:
    """The family of a loaded config's ``model_type``; ValueError naming the supported ones."""
    if model_type not in FAMILIES:
        raise ValueError(f"model.name_or_path={name_or_path!r} is a {model_type!r} model; supported "
                         f"wav2vec2-family model types: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[model_type]


__all__ = ["FAMILIES", "Family", "family_of"]
