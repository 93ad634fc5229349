"""Per-block hyperparameters and model components: which block (``IN00`` … ``M00`` … ``OUT11``)
and which sd-mecha component (``clip_l``, ``vae``, ``diffuser`` …) each key belongs to.

A recipe's ``dict IN00=0.2 OUT11=0.8`` given as a ``Tensor`` or ``float`` argument holds one
value per block; ``pick_component`` and ``omit_component`` select keys by component. Both tables
come from the registry: the first fingerprint with a ``blocks:`` or ``components:`` table whose
required keys and shapes the input's header has; a key belongs to the block (component) with the
longest matching prefix. The same match names the MIR id of the result's family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from compiler.tensorfile import SafetensorsHeader

if TYPE_CHECKING:
    from compiler.ir import Shape
    from compiler.link import LinkedRegistry


@dataclass(frozen=True, slots=True)
class Family:
    """The registry's variant whose fingerprint a header matches, and that fingerprint's blocks
    and components."""

    mir: str
    blocks: Mapping[str, tuple[str, ...]]
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def block_of(self, key: str) -> str | None:
        """The block whose prefix is the longest one ``key`` starts with."""
        return _longest_prefix(self.blocks, key)

    def component_of(self, key: str) -> str | None:
        """The component whose prefix is the longest one ``key`` starts with."""
        return _longest_prefix(self.components, key)


def _longest_prefix(table: Mapping[str, tuple[str, ...]], key: str) -> str | None:
    best: tuple[int, str | None] = (0, None)
    for name, prefixes in table.items():
        for prefix in prefixes:
            if key.startswith(prefix) and len(prefix) > best[0]:
                best = (len(prefix), name)
    return best[1]


@dataclass(frozen=True, slots=True)
class BlockFingerprint:
    """A registry fingerprint with a blocks or components table: what a header must hold, its
    variant and its tables."""

    mir: str
    required: Mapping[str, Shape]
    blocks: Mapping[str, tuple[str, ...]]
    components: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


FamilyMatcher = Callable[[SafetensorsHeader], Family | None]


def block_fingerprints(registry: LinkedRegistry | None) -> list[BlockFingerprint]:
    """The registry's fingerprints with a blocks or components table, in the order they are
    tried."""
    if registry is None:
        return []
    return [
        BlockFingerprint(str(mir), fp.required, fp.blocks, fp.components)
        for mir, variant in sorted(registry.variants.items(), key=lambda item: str(item[0]))
        for fp in variant.fingerprints
        if fp.blocks or fp.components
    ]


def fingerprint_matcher(table: Callable[[], Sequence[BlockFingerprint]]) -> FamilyMatcher:
    """Match headers against the fingerprints ``table`` gives (asked once, lazily)."""
    loaded: list[Sequence[BlockFingerprint]] = []

    def match(header: SafetensorsHeader) -> Family | None:
        if not loaded:
            loaded.append(table())
        for fingerprint in loaded[0]:
            if _matches(header, fingerprint.required):
                return Family(fingerprint.mir, fingerprint.blocks, fingerprint.components)
        return None

    return match


def registry_matcher(linked: Callable[[], LinkedRegistry | None]) -> FamilyMatcher:
    """Match headers against the fingerprints of the registry ``linked`` loads (once, lazily)."""
    return fingerprint_matcher(lambda: block_fingerprints(linked()))


def _matches(header: SafetensorsHeader, required: Mapping[str, Shape]) -> bool:
    tensors = header.tensors
    return all(
        key in tensors and _fits(tensors[key].shape, shape) for key, shape in required.items()
    )


def _fits(shape: tuple[int, ...], pattern: Shape) -> bool:
    """A fingerprint's shape: ``None`` matches any size."""
    if len(shape) != len(pattern):
        return False
    return all(want is None or want == size for size, want in zip(shape, pattern, strict=True))
