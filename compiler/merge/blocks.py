"""Per-block hyperparameters: which block (``IN00`` … ``M00`` … ``OUT11``) each key belongs to.

A recipe's ``dict IN00=0.2 OUT11=0.8`` given as a ``Tensor`` or ``float`` argument holds one
value per block. The blocks come from the registry: the first fingerprint with a ``blocks:``
table whose required keys and shapes the input's header has; a key belongs to the block with
the longest matching prefix. The same match names the MIR id of the result's family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from compiler.ir import Shape
from compiler.link import LinkedRegistry
from compiler.tensorfile import SafetensorsHeader


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


FamilyMatcher = Callable[[SafetensorsHeader], Family | None]


def registry_matcher(linked: Callable[[], LinkedRegistry | None]) -> FamilyMatcher:
    """Match headers against the fingerprints of the registry ``linked`` loads (once, lazily)."""
    loaded: list[LinkedRegistry | None] = []

    def match(header: SafetensorsHeader) -> Family | None:
        if not loaded:
            loaded.append(linked())
        registry = loaded[0]
        if registry is None:
            return None
        for mir, variant in sorted(registry.variants.items(), key=lambda item: str(item[0])):
            for fingerprint in variant.fingerprints:
                if fingerprint.blocks and _matches(header, fingerprint.required):
                    return Family(str(mir), fingerprint.blocks)
        return None

    return match


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
