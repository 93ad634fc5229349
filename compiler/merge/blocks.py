"""Per-block hyperparameters and model components: which block (``IN00`` … ``M00`` … ``OUT11``)
and which sd-mecha component (``clip_l``, ``vae``, ``diffuser`` …) each key belongs to.

A recipe's ``dict IN00=0.2 OUT11=0.8`` given as a ``Tensor`` or ``float`` argument holds one
value per block; ``pick_component`` and ``omit_component`` select keys by component. Both tables
come from the registry: the first fingerprint with a ``blocks:`` or ``components:`` table whose
required keys and shapes the input's header has; a key belongs to the block (component) with the
longest matching prefix. The same match names the MIR id of the result's family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from compiler.ir import Shape
from compiler.link import LinkedRegistry
from compiler.tensorfile import SafetensorsHeader


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
                tables = fingerprint.blocks or fingerprint.components
                if tables and _matches(header, fingerprint.required):
                    return Family(str(mir), fingerprint.blocks, fingerprint.components)
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
