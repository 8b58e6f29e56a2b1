"""Space files (YAML) and the presets shipped in ``spaces/presets/``.

A space file::

    name: mlp
    description: The broad default space for dense networks.
    params:
      units: {type: int, low: 16, high: 512, log: true}
      regularizer: {type: categorical, choices: [none, l1, l2]}
      reg_strength: {type: float, low: 1.0e-6, high: 1.0e-2, log: true,
                     when: {regularizer: [l1, l2]}}
      batch_size: 64            # shorthand for {type: fixed, value: 64}

Files are read with ``yaml.safe_load`` semantics (plus a check for keys given twice, which
plain YAML would silently let the last one win). Parameters keep the file's order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spaces._builders import Builder, Vocabulary, check_model_ref
from spaces._schema import Space, SpaceError

_SUFFIXES = (".yaml", ".yml")


# Bounds on an untrusted space file: a space is a few dozen small entries, and a file of
# nested anchors and aliases ("billion laughs") would otherwise expand without end.
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 10_000  # YAML nodes once every alias is expanded
MAX_DEPTH = 20


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key given twice and a document larger than
    MAX_NODES nodes (aliases expanded) or deeper than MAX_DEPTH."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_bounds(node)
        return node


def _check_bounds(root: yaml.Node) -> None:
    """Count the nodes of the document as if every alias were expanded, without expanding
    them (a node's size is computed once, however often it is referred to)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark
            )
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        if total > MAX_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_NODES:,} entries once its aliases (*name) are expanded; "
                "a space file needs a few dozen",
                node.start_mark,
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    # The keys written here, not those a merge (<<: *name) brings: a key written beside a
    # merge overrides the merged one, as YAML says.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(text: str, source: str) -> Any:
    try:
        # _StrictLoader is a SafeLoader subclass: this is safe_load plus a duplicate-key check.
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "unreadable"
        raise SpaceError(f"invalid YAML{where}: {problem}.", source=source) from None
    except yaml.YAMLError as error:
        raise SpaceError(f"invalid YAML: {error}.", source=source) from None


def parse_space(mapping: object, source: str, builder: Builder | str | None = None) -> Space:
    """Validate a parsed space file (``{name, description, params}``) into a :class:`Space`
    for ``builder``: the Dense builder by default, whose vocabulary it must fit; a builder
    of the user's own (or its ``package.module:function``) takes any names.

    ``source`` (a file path or preset name) prefixes every error message.
    """
    space = _parse(mapping, source)
    vocabulary = _vocabulary_of(builder)
    return space if vocabulary is None else vocabulary.check_space(space, source)


def _vocabulary_of(builder: Builder | str | None) -> Vocabulary | None:
    from spaces._builder import DENSE

    if builder is None:
        return DENSE.vocabulary
    if isinstance(builder, str):
        if builder == DENSE.name:
            return DENSE.vocabulary
        check_model_ref(builder)  # imported where it trains, not here
        return None
    return builder.vocabulary


def _parse(mapping: object, source: str) -> Space:
    if mapping is None:
        raise SpaceError("the file is empty; expected a mapping with `params`.", source=source)
    if not isinstance(mapping, Mapping):
        raise SpaceError(
            "expected a mapping with `name`, `description` and `params` at the top level, "
            f"but got {type(mapping).__name__}.",
            source=source,
        )
    return Space.from_dict(mapping, source=source)


def load_space(
    path_or_preset: str | os.PathLike[str], builder: Builder | str | None = None
) -> Space:
    """Load a space from a YAML file, or a shipped preset when no such file exists, checked
    against ``builder`` (default: the Dense builder; the presets are its spaces).

    A file without a ``name`` is named after its stem. Raises :class:`SpaceError` for an
    invalid file, a missing file, or an unknown preset (listing the presets).
    """
    path = Path(path_or_preset)
    if path.is_file():
        source = str(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise SpaceError(
                    f"the file has {path.stat().st_size:,} bytes; a space file has at most "
                    f"{MAX_FILE_BYTES:,}.",
                    source=source,
                )
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SpaceError(f"cannot read the file: {error}.", source=source) from None
        data = _read_yaml(text, source)
        if isinstance(data, dict) and "name" not in data:
            data = {"name": path.stem, **data}
        return parse_space(data, source, builder)
    name = str(path_or_preset)
    if name in list_presets():
        where = f"preset {name!r}"
        return parse_space(_read_yaml(preset_text(name), where), where, builder)
    if isinstance(path_or_preset, os.PathLike) or name.endswith(_SUFFIXES) or os.sep in name:
        what = "not a regular file" if path.exists() else "no such file"
        raise SpaceError(f"{what} (presets are: {', '.join(list_presets())}).", source=name)
    raise SpaceError(
        f"unknown space {name!r}: not a file, and not a preset; "
        f"expected one of: {', '.join(list_presets())}."
    )


def _presets_dir() -> resources.abc.Traversable:
    return resources.files("spaces").joinpath("presets")


def list_presets() -> list[str]:
    """The names of the shipped presets, sorted."""
    files = _presets_dir().iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of preset ``name`` (a starting point for a space file of one's own)."""
    if name not in list_presets():
        raise SpaceError(f"unknown preset {name!r}; expected one of: {', '.join(list_presets())}.")
    return _presets_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def space_to_yaml(space: Space) -> str:
    """The space as a YAML space file; ``parse_space`` of it gives back an equal space."""
    return yaml.safe_dump(space.to_dict(), sort_keys=False, allow_unicode=True)
