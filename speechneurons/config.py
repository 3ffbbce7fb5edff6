"""Config checks the JSON schema cannot phrase well: a misspelled key, with the nearest valid one.

The schema (``schemas/config.schema.yaml``) forbids unknown keys at every
level (``additionalProperties: false``); jsonschema then says only that a
property "was unexpected". :func:`unknown_keys` walks the config beside the
schema and names each unknown key by its full path and the closest valid
spelling, so ``ablation.segments_ms`` fails before any job runs with "did you
mean ablation.segment_ms?". Pure Python: the Snakefile imports it.
"""

from __future__ import annotations

import difflib
from typing import Any


def unknown_keys(config: Any, schema: dict, where: str = "", root: dict | None = None) -> list[str]:
    """One message per key of ``config`` that ``schema`` does not declare, at any depth.

    Local references (``$ref: "#/$defs/model"``) are followed within ``root``
    (the whole schema; ``schema`` itself at the top).
    """
    root = schema if root is None else root
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    messages: list[str] = []
    if isinstance(config, dict) and "properties" in schema:
        known = schema["properties"]
        for key, value in config.items():
            path = f"{where}.{key}" if where else str(key)
            if key not in known:
                if schema.get("additionalProperties", True) is False:
                    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.5)
                    hint = f"; did you mean {where + '.' if where else ''}{close[0]}?" if close else ""
                    messages.append(f"unknown config key {path!r}{hint} "
                                    f"(valid here: {', '.join(sorted(known))})")
                continue
            messages += unknown_keys(value, known[key], path, root)
    elif isinstance(config, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(config):
            messages += unknown_keys(item, schema["items"], f"{where}[{i}]", root)
    return messages
