"""Corpora, one file each: ``speechneurons/datasets/<name>.py``.

A corpus module opens with a docstring that describes the corpus and
declares ``SPEC`` (a :class:`~speechneurons.datasets.spec.CorpusSpec`),
``LAYOUT`` (one line: the expected file layout, for error messages) and
``describe(root, options)``: per recognised file, its path relative to the
root and its metadata, or the reason its name is not valid. A corpus whose
design comes from the config (the manifest) declares ``make_spec(options)``
instead of ``SPEC``, and may declare ``check_root(root, options)``: what is
wrong with the files the design needs, found before any job runs. :func:`load_corpus` finds a module by ``dataset.name``,
so adding a corpus is that one file and its test.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from speechneurons.datasets.spec import CorpusSpec, nearest

#: modules of this package that are not corpora
_NOT_CORPORA = {"spec", "index", "state"}


@dataclass(frozen=True)
class Corpus:
    """A corpus as the index uses it: its spec, its layout line and its scanner."""

    spec: CorpusSpec
    layout: str
    scanner: Callable[[Path, dict], Iterator[tuple[str, dict | str]]]
    options: dict
    root_checker: Callable[[Path, dict], list[str]] | None = None

    def describe(self, root: Path) -> Iterator[tuple[str, dict | str]]:
        return self.scanner(root, self.options)

    def check_root(self, root: Path) -> list[str]:
        """Errors in the files under ``root`` that the corpus's design needs ([] when none)."""
        return self.root_checker(Path(root), self.options) if self.root_checker else []


def available() -> list[str]:
    """The corpus names ``dataset.name`` accepts."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_CORPORA)


def corpus_module_path(name: str) -> Path:
    """The file that defines corpus ``name`` (for code hashes)."""
    return Path(__file__).with_name(f"{name}.py")


def corpus_spec(corpus: dict) -> CorpusSpec:
    """The design of the corpus a rule's ``corpus`` param names ({name, manifest})."""
    return load_corpus(corpus["name"], corpus.get("manifest") or {}).spec


def load_corpus(name: str, options: dict | None = None) -> Corpus:
    """The corpus ``dataset.name`` names; ``options``: ``dataset.manifest`` for a manifest.

    Raises KeyError naming the unknown corpus and the nearest known one.
    """
    if name not in available():
        raise KeyError(f"dataset.name: no corpus {name!r}{nearest(name, available())}; "
                       f"known: {', '.join(available())}")
    module = importlib.import_module(f"speechneurons.datasets.{name}")
    options = dict(options or {})
    spec = module.make_spec(options) if hasattr(module, "make_spec") else module.SPEC
    return Corpus(spec=spec, layout=module.LAYOUT, scanner=module.describe, options=options,
                  root_checker=getattr(module, "check_root", None))
