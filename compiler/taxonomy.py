"""The MIR taxonomy: which domains and architectures exist (``spec/taxonomy.yaml``).

Architectures are data, not grammar: a parsed :class:`~compiler.lang.mir.MirId` is checked here,
aliases used by the upstream database (``artm``, ``aetm``, ``ststm`` …) normalise to the canonical
architecture, and unknown ones get "did you mean".
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, Span, did_you_mean
from compiler.lang.mir import MirId
from compiler.resources import data_dir
from compiler.yamlfile import load_yaml_file


@dataclass(frozen=True, slots=True)
class Architecture:
    name: str
    description: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    """Domains and architectures, with alias lookup."""

    domains: Mapping[str, str]
    architectures: Mapping[str, Architecture]
    _canonical: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table = {name: name for name in self.architectures}
        for arch in self.architectures.values():
            table.update(dict.fromkeys(arch.aliases, arch.name))
        object.__setattr__(self, "_canonical", table)

    def canonical_arch(self, arch: str) -> str | None:
        """The canonical architecture for ``arch`` or one of its aliases; None if unknown."""
        return self._canonical.get(arch)

    def normalise(self, mir: MirId) -> MirId:
        """``mir`` with its architecture alias replaced by the canonical name."""
        canonical = self.canonical_arch(mir.arch)
        return mir if canonical in (None, mir.arch) else mir._replace(arch=canonical)

    def check(self, mir: MirId, span: Span | None = None) -> list[Diagnostic]:
        """Diagnostics for an id whose architecture the taxonomy does not know."""
        if self.canonical_arch(mir.arch) is not None:
            return []
        notes = did_you_mean(mir.arch, self._canonical)
        message = f"unknown architecture {mir.arch!r} in {mir}"
        return [Diagnostic.error("mir-unknown-arch", message, span, notes)]

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> Taxonomy:
        domains = {k: v["description"] for k, v in document["domains"].items()}
        archs = {
            name: Architecture(name, body["description"], tuple(body.get("aliases", ())))
            for name, body in document["architectures"].items()
        }
        return cls(domains, archs)


def load_taxonomy(spec_dir: Path | None = None) -> Taxonomy:
    """The taxonomy of the registry at ``spec_dir`` (default: the shipped registry)."""
    path = (spec_dir or data_dir("spec")) / "taxonomy.yaml"
    return _load(path.resolve())


@functools.cache
def _load(path: Path) -> Taxonomy:
    return Taxonomy.from_mapping(load_yaml_file(path).value)
