"""``mirc fingerprint``: the fingerprint block of a file, in the spec format, to paste into a spec.

Required keys are chosen so that they tell the file apart: the first and last weight, the deepest
layer of each numbered stack (depth is what most rivals differ in), and any key a rival
fingerprint of the same format forbids. Keys that rivals of the same format require and this
file lacks become forbidden keys. A LoRA's rank is written as ``null`` (any size).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from compiler.identify.pool import Candidate, Pool
from compiler.identify.prefixes import EXTRA_PREFIXES, MARKER_KEYS, common_region
from compiler.identify.report import report
from compiler.ir import Shape
from compiler.lang.mir import MirId
from compiler.tensorfile import SafetensorsHeader

MAX_REQUIRED = 8
MAX_FORBIDDEN = 3
MAX_STACKS = 4
# The component a variant of each architecture is, in a pipeline.
COMPONENT_OF_ARCH = {
    "unet": "unet",
    "dit": "transformer",
    "vae": "vae",
    "vit": "text_encoder",
    "stst": "text_encoder",
    "aet": "text_encoder",
}
_STACK = re.compile(r"^(.*?[._])(\d+)[._]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
# Which axis of a LoRA matrix is its rank.
_RANK_AXIS = {
    ".lora_down.weight": 0,
    ".lora_up.weight": 1,
    ".lora_A.weight": 0,
    ".lora_B.weight": 1,
}

Layout = dict[str, tuple[int, ...]]


def suggest_fingerprint(header: SafetensorsHeader, mir: MirId, pool: Pool, file_format: str) -> str:
    """The YAML ``fingerprints:`` entry for the file of ``header``, as variant ``mir`` in
    ``file_format``."""
    lora = file_format.endswith("lora")
    component = None if lora else COMPONENT_OF_ARCH.get(mir.arch)
    layout = _model_layout(header, _region_of(header, pool, component))
    rivals = [c for c in pool if c.fingerprint.format == file_format and _other(c.mir, mir)]
    required = _required(layout, rivals)
    forbidden = _forbidden(layout, rivals)
    shapes = {key: _written_shape(key, layout[key], lora) for key in required}
    parameters = sum(_elements(shape) for shape in layout.values())
    return _yaml(mir, file_format, component, shapes, forbidden, len(layout), parameters)


def guess_format(header: SafetensorsHeader, pool: Pool) -> str:
    """The format of the file's best match, else the one its key names suggest."""
    found = report(header, pool).components
    if found:
        return found[0].best.candidate.fingerprint.format
    if any(".lora_A." in name for name in header.tensors):
        return "peft-lora"
    if any(name.startswith("lora_") for name in header.tensors):
        return "kohya-lora"
    return "diffusers"


def _region_of(header: SafetensorsHeader, pool: Pool, component: str | None) -> str:
    """Where the component lies in a combined file: the region its match read, else the file."""
    found = report(header, pool).components
    return next((f.best.region for f in found if f.best.candidate.label == component), "")


def _model_layout(header: SafetensorsHeader, region: str) -> Layout:
    """The tensors of the component under ``region``, without marker keys and extra weights
    (an EMA copy)."""
    return {
        name: shape
        for name, _, shape, _ in header.tensors.rows()
        if name.startswith(region)
        and name not in MARKER_KEYS
        and not name.startswith(EXTRA_PREFIXES)
    }


def _other(candidate_mir: str, mir: MirId) -> bool:
    return not candidate_mir.startswith(f"mir:{mir.domain}.{mir.arch}.{mir.series}")


def _natural(key: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _required(layout: Layout, rivals: Sequence[Candidate]) -> list[str]:
    weights = sorted((k for k, s in layout.items() if len(s) >= 2), key=_natural)
    chosen = [weights[0], weights[-1]] if weights else sorted(layout, key=_natural)[:2]
    chosen += _deepest_layers(weights)
    chosen += [key for c in rivals for key in c.fingerprint.forbidden if key in layout]
    return list(dict.fromkeys(chosen))[:MAX_REQUIRED]


def _deepest_layers(weights: list[str]) -> list[str]:
    """The first weight of the last layer of each numbered stack (``double_blocks.18.…``)."""
    deepest: dict[str, tuple[int, str]] = {}
    for key in weights:
        found = _STACK.match(key)
        if found is None:
            continue
        stack, depth = found.group(1), int(found.group(2))
        if stack not in deepest or depth > deepest[stack][0]:
            deepest[stack] = (depth, key)
    return [key for _, key in list(deepest.values())[:MAX_STACKS]]


def _forbidden(layout: Layout, rivals: Sequence[Candidate]) -> list[str]:
    """Keys that rivals of the same format require and this file lacks."""
    region = common_region(layout)
    lacking = [
        key
        for c in rivals
        for key in c.fingerprint.required
        if key not in layout and key.startswith(region)
    ]
    return sorted(dict.fromkeys(lacking), key=_natural)[:MAX_FORBIDDEN]


def _written_shape(key: str, shape: tuple[int, ...], lora: bool) -> Shape:
    axis = next((a for end, a in _RANK_AXIS.items() if key.endswith(end)), None)
    if not lora or axis is None or axis >= len(shape):
        return shape
    return tuple(None if i == axis else size for i, size in enumerate(shape))


def _elements(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _yaml(
    mir: MirId,
    file_format: str,
    component: str | None,
    required: dict[str, Shape],
    forbidden: list[str],
    tensors: int,
    parameters: int,
) -> str:
    lines = [f"# {mir}: paste under the variant's fingerprints:", f"- format: {file_format}"]
    if component is not None:
        lines.append(f"  component: {component}")
    lines.append("  required:")
    lines += [f"    {_key(key)}: {_shape(shape)}" for key, shape in required.items()]
    if forbidden:
        lines.append("  forbidden: [" + ", ".join(map(_key, forbidden)) + "]")
    lines += [f"  tensors: {tensors}", f"  parameters: {parameters}"]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) and not key[0].isdigit() else json.dumps(key)


def _shape(shape: Shape) -> str:
    return "[" + ", ".join("null" if size is None else str(size) for size in shape) + "]"
