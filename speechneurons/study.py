"""What a study config means for the DAG: its models, the question tables and their report
categories. Pure Python (the Snakefile imports it); tested without Snakemake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the tables of questions 2-5, by file name (named by the role of their factor)
QUESTION_TABLES = ("target_encoding", "temporal_profiles", "loudness", "group_contrasts", "graded_effects")

#: the folder the workflow builds tiny models in (model.build_tiny)
TINY_MODELS = "results/models"


def study_models(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The study's models by name: ``models`` (a list), else ``model`` (one), in the config's order.

    A model's name is ``name``, else the last part of its ``name_or_path``;
    each writes under ``results/model~<name>/``. Raises ValueError, in the
    config's words, when no model is named, two share a name, or a model the
    workflow builds (``build_tiny``) is not under ``results/models/``.
    """
    listed = config.get("models") or ([config["model"]] if config.get("model") else [])
    if not listed:
        raise ValueError("config: name the model (model.name_or_path) or several (models: a list)")
    models: dict[str, dict[str, Any]] = {}
    for i, model in enumerate(listed):
        name = model.get("name") or Path(str(model["name_or_path"]).rstrip("/")).name
        if name in models:
            raise ValueError(f"config: models[{i}] is named {name!r} like an earlier model; give it a "
                             "distinct models[].name")
        if model.get("build_tiny") and Path(model["name_or_path"]).parent.as_posix() != TINY_MODELS:
            raise ValueError(f"config: model {name!r} has build_tiny, so its name_or_path must be "
                             f"{TINY_MODELS}/<folder>, not {model['name_or_path']!r}")
        models[name] = model
    return models


def model_key(config: dict[str, Any], index: int) -> str:
    """The config key of the ``index``-th model's ``name_or_path``, as the user wrote it."""
    return f"models[{index}].name_or_path" if config.get("models") else "model.name_or_path"


def question_categories(target: str, group: str | None, graded: str | None) -> dict[int, str]:
    """The report categories of questions 2, 4 and 5, in the corpus's words (its target, group and
    graded factor); a question the corpus lacks keeps a general name (its figure says why)."""
    return {2: f"2 {target.capitalize()} encoding",
            4: f"4 {group.capitalize()} differences" if group else "4 Group differences",
            5: f"5 {graded.capitalize()} effects" if graded else "5 Graded effects"}
