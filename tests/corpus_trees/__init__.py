"""Test data, one module per corpus: ``tests/corpus_trees/<corpus>.py`` beside
``speechneurons/datasets/<corpus>.py``.

A module builds a small tree in the corpus's own naming scheme (numpy tones) with bad names among
them, and says what the index and the workflow must find:

- ``tree(root)`` -> (root, number of valid clips, rejected path -> a fragment of its reason);
- ``SPEAKERS`` and ``LEVELS`` (factor -> levels found in the tree);
- ``ASKED``: the report categories of questions 4 and 5, and the note the problems page must give
  (None when both are asked);
- ``OPTIONS``: its ``dataset.manifest`` (a corpus whose design comes from the config).

The modules are found by listing this folder, so adding a corpus is its file in the package and
its tree here. RAVDESS's test data are the bundled real clips (``data/ravdess-mini``,
``tests/test_ravdess.py``).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

#: corpora whose test data are bundled files, not a tree built here
BUNDLED = {"ravdess": "data/ravdess-mini"}

#: corpus name -> its test-data module
CORPORA: dict[str, ModuleType] = {
    m.name: importlib.import_module(f"{__name__}.{m.name}")
    for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
#: corpus name -> its tree builder
TREES = {name: module.tree for name, module in CORPORA.items()}


def options(name: str) -> dict:
    """The corpus's ``dataset.manifest`` options ({} for a corpus with a fixed design)."""
    return dict(getattr(CORPORA[name], "OPTIONS", {}))
