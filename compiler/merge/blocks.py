"""Per-block hyperparameters: which block (``IN00`` … ``M00`` … ``OUT11``) each key belongs to.

A recipe's ``dict IN00=0.2 OUT11=0.8`` given as a ``Tensor`` or ``float`` argument holds one
value per block. The blocks come from the registry: the first fingerprint with a ``blocks:``
table whose required keys and shapes the input's header has; a key belongs to the block with
the longest matching prefix. The same match names the MIR id of the result's family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compiler.tensorfile import SafetensorsHeader

if TYPE_CHECKING:
    from compiler.ir import Shape
    from compiler.link import LinkedRegistry


@dataclass(frozen=True, slots=True)
class Family:
    """The registry's variant whose fingerprint a header matches, and that fingerprint's blocks."""

    mir: str
    blocks: Mapping[str, tuple[str, ...]]

    def block_of(self, key: str) -> str | None:
        """The block whose prefix is the longest one ``key`` starts with."""
        best: tuple[int, str | None] = (0, None)
        for block, prefixes in self.blocks.items():
            for prefix in prefixes:
                if key.startswith(prefix) and len(prefix) > best[0]:
                    best = (len(prefix), block)
        return best[1]


@dataclass(frozen=True, slots=True)
class BlockFingerprint:
    """A registry fingerprint with a blocks table: what a header must hold, and its variant."""

    mir: str
    required: Mapping[str, Shape]
    blocks: Mapping[str, tuple[str, ...]]


FamilyMatcher = Callable[[SafetensorsHeader], Family | None]


def block_fingerprints(registry: LinkedRegistry | None) -> list[BlockFingerprint]:
    """The registry's fingerprints with a blocks table, in the order they are tried."""
    if registry is None:
        return []
    return [
        BlockFingerprint(str(mir), fingerprint.required, fingerprint.blocks)
        for mir, variant in sorted(registry.variants.items(), key=lambda item: str(item[0]))
        for fingerprint in variant.fingerprints
        if fingerprint.blocks
    ]


def fingerprint_matcher(table: Callable[[], Sequence[BlockFingerprint]]) -> FamilyMatcher:
    """Match headers against the fingerprints ``table`` gives (asked once, lazily)."""
    loaded: list[Sequence[BlockFingerprint]] = []

    def match(header: SafetensorsHeader) -> Family | None:
        if not loaded:
            loaded.append(table())
        for fingerprint in loaded[0]:
            if _matches(header, fingerprint.required):
                return Family(fingerprint.mir, fingerprint.blocks)
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
