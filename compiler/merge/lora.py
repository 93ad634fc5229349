"""Kohya LoRAs as recipe inputs: a delta in the base model's key space, computed key by key.

A kohya LoRA names each module it trains after a key of a kohya-layout model: ``lora_`` + the key
without ``.weight``, dots made underscores (``lora_unet_down_blocks_0_attentions_0_proj_in``),
with ``.lora_up.weight``, ``.lora_down.weight``, optionally ``.lora_mid.weight`` and ``.alpha``
under it. Which kohya key a checkpoint key is comes from ``kohya_names.json``: sd-mecha's own
conversions, written as data by ``tools/gen_kohya_names.py``. At plan time every key of the base
model's header that a LoRA can train is renamed by those rules, so a LoRA maps onto whatever
layout the base file has (the original ``model.diffusion_model.`` one, or the kohya one itself);
a LoRA key that maps to no key of the base is refused, named, before any tensor is read.

A recipe may use a LoRA as it is (a delta) or through sd-mecha's conversions
(``convert_'sd1-kohya_kohya_lora'_to_base`` and ``convert_'sd1-kohya'_to_'sd1-ldm'``), which
then read the same delta. The delta of a key is sd-mecha's: ``up @ down`` (a Tucker core
``lora_mid`` rebuilt between them), times ``alpha / rank`` when the LoRA has an alpha, reshaped
to the base's shape; SDXL's OpenCLIP ``in_proj_weight`` stacks the q, k and v deltas. A key the
LoRA does not train has no value, as in sd-mecha (whose ``add_difference`` falls back to the
base); :func:`check_coverage` refuses a recipe that would leave such a key without a value.
Planning needs headers only; the delta's math (torch) is :mod:`compiler.merge.loradelta`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from compiler.diagnostics import Diagnostic, MircError, Span
from compiler.lang.mecha.ast import Merge, Model, Recipe, Str
from compiler.merge.inputs import ModelInput
from compiler.merge.program import LiteralValues, Node, operands
from compiler.tensorfile import SafetensorsHeader

NAMES = Path(__file__).with_name("kohya_names.json")
UP, MID, DOWN, ALPHA = "lora_up.weight", "lora_mid.weight", "lora_down.weight", "alpha"


@dataclass(frozen=True, slots=True)
class Naming:
    """One of sd-mecha's kohya LoRA configs and the rules from checkpoint keys to its names."""

    lora_config: str
    conversions: frozenset[str]  # to the kohya-layout base, and from there to the checkpoint's
    prefix: str
    rules: Mapping[str, str]  # checkpoint key prefix -> kohya key prefix (longest wins)
    joined: Mapping[str, tuple[tuple[str, ...], bool]]  # key -> kohya keys stacked, transposed

    def kohya_keys(self, key: str) -> tuple[tuple[str, ...], bool]:
        """The kohya-layout keys whose deltas make ``key``'s, and whether to transpose them."""
        if key in self.joined:
            return self.joined[key]
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            target = self.rules.get(".".join(parts[:end]))
            if target is not None:
                return (".".join([target, *parts[end:]]),), False
        return (key,), False

    def stem(self, kohya_key: str) -> str:
        """sd-mecha's LoRA name of a kohya-layout key (``_to_lycoris_keys``)."""
        parts = kohya_key.split(".")
        if parts[-1] == "weight":
            parts = parts[:-1]
        return f"{self.prefix}_{'_'.join(parts)}"


@dataclass(frozen=True, slots=True)
class Module:
    """One module a LoRA trains: its keys in the LoRA file."""

    stem: str
    up: str
    down: str
    mid: str | None = None
    alpha: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """How the delta of one base key is built: its modules' deltas stacked, maybe transposed."""

    shape: tuple[int, ...]  # the base key's
    modules: tuple[Module, ...]
    transpose: bool = False


@dataclass(frozen=True, slots=True)
class LoraMap:
    """A LoRA mapped onto its base: each base key it trains and how."""

    naming: str
    base: str
    targets: Mapping[str, Target]


@functools.cache
def namings() -> tuple[Naming, ...]:
    """sd-mecha's kohya namings, from ``kohya_names.json``."""
    document = json.loads(NAMES.read_text(encoding="utf-8"))
    return tuple(
        Naming(
            entry["lora_config"],
            frozenset((entry["to_base"], entry["to_original"])),
            entry["prefix"],
            entry["rules"],
            {k: (tuple(v["parts"]), v["transpose"]) for k, v in entry["joined"].items()},
        )
        for entry in document["namings"]
    )


def is_kohya_lora(header: SafetensorsHeader) -> bool:
    """Whether a file is a kohya LoRA: its keys start with ``lora_`` (no checkpoint's do)."""
    return any(key.startswith("lora_") for key in header.tensors)


def attach_loras(
    recipe: Recipe, compiled: Mapping[int, Node], inputs: Mapping[int, ModelInput]
) -> dict[int, ModelInput]:
    """The inputs with each kohya LoRA mapped onto the first full model; problems raise."""
    loras = [i for i in inputs.values() if is_kohya_lora(i.header)]
    full = [i for i in inputs.values() if not is_kohya_lora(i.header)]
    problems = _misused_conversions(recipe, compiled, {i.index for i in full})
    base = full[0] if full else None
    attached = dict(inputs)
    for lora in loras:
        model = recipe.expressions[lora.index]
        assert isinstance(model, Model)
        if base is None:
            message = f"the LoRA '{lora.name}' needs a full model in the recipe to apply to"
            problems.append(Diagnostic.error("merge-lora", message, model.path.span))
            continue
        wanted = _declared_naming(recipe, compiled, model, lora.index)
        try:
            mapped = map_lora(lora.header, base.header, model.path.span, wanted)
        except MircError as exc:
            problems.extend(exc.diagnostics)
            continue
        attached[lora.index] = replace(lora, lora=mapped)
    if problems:
        raise MircError(problems)
    return attached


def _misused_conversions(
    recipe: Recipe, compiled: Mapping[int, Node], full: set[int]
) -> list[Diagnostic]:
    """Conversions mirc runs only as part of applying a LoRA (they read its delta)."""
    problems = []
    for index, node in compiled.items():
        if isinstance(node, int) and node != index and node in full:
            expression = recipe.expressions[index]
            assert isinstance(expression, Merge)
            message = (
                f"mirc merge runs '{expression.method.value}' only on a kohya LoRA "
                "(to apply it to its base); here it converts a full model"
            )
            problems.append(Diagnostic.error("merge-unsupported", message, expression.span))
    return problems


def _declared_naming(
    recipe: Recipe, compiled: Mapping[int, Node], model: Model, index: int
) -> Naming | None:
    """The naming the recipe gives the LoRA: its model_config, or a conversion applied to it."""
    declared = {_model_config(model)}
    for at, node in compiled.items():
        expression = recipe.expressions[at]
        if node == index and at != index and isinstance(expression, Merge):
            declared.add(expression.method.value)
    return next(
        (n for n in namings() if n.lora_config in declared or n.conversions & declared), None
    )


def _model_config(model: Model) -> str | None:
    given = [k.value for k in model.kwargs if k.name == "model_config"] + list(model.args[:1])
    return given[0].value if given and isinstance(given[0], Str) else None


def map_lora(
    lora: SafetensorsHeader, base: SafetensorsHeader, span: Span, wanted: Naming | None = None
) -> LoraMap:
    """Map every module of ``lora`` onto a key of ``base`` (headers only); the first naming
    that maps them all wins. Problems raise :class:`MircError` at ``span``."""
    modules = _modules(lora, span)
    tried = [wanted] if wanted is not None else list(namings())
    best: tuple[int, str, Naming] | None = None
    for naming in tried:
        stems = _stems(naming, base)
        unmapped = sorted(stem for stem in modules if stem not in stems)
        if not unmapped:
            targets = _targets(naming, base, stems, modules)
            _check_shapes(lora, base, targets, span)
            return LoraMap(naming.lora_config, base.path, targets)
        if best is None or len(unmapped) < best[0]:
            best = (len(unmapped), unmapped[0], naming)
    assert best is not None
    count, first, naming = best
    key = modules[first].down
    message = f"the LoRA's key '{key}' names no key of the base model {base.path}"
    notes = (
        f"{count} of its {len(modules)} modules do not map (read as {naming.lora_config}, "
        "sd-mecha's kohya names)",
        "is the LoRA for another model family?",
    )
    raise MircError([Diagnostic.error("merge-lora", message, span, notes)])


def _modules(lora: SafetensorsHeader, span: Span) -> dict[str, Module]:
    """The LoRA's keys grouped by module; a key of another kind, or half a pair, is refused."""
    parts: dict[str, dict[str, str]] = {}
    for key in sorted(lora.tensors):
        stem, _, suffix = key.partition(".")
        if suffix not in (UP, MID, DOWN, ALPHA) or not stem.startswith("lora_"):
            message = f"'{key}' is not a kohya LoRA key"
            note = f"mirc merge reads lora_….{{{UP}, {DOWN}, {MID}, {ALPHA}}}"
            raise MircError([Diagnostic.error("merge-lora", message, span, (note,))])
        parts.setdefault(stem, {})[suffix] = key
    modules = {}
    for stem, found in parts.items():
        if UP not in found or DOWN not in found:
            lacking = DOWN if UP in found else UP
            message = f"the LoRA module '{stem}' has no '{lacking}'"
            raise MircError([Diagnostic.error("merge-lora", message, span)])
        modules[stem] = Module(stem, found[UP], found[DOWN], found.get(MID), found.get(ALPHA))
    return modules


def _stems(naming: Naming, base: SafetensorsHeader) -> dict[str, tuple[str, int]]:
    """Each LoRA name the base's trainable keys have: the key, and its place in a stack."""
    stems: dict[str, tuple[str, int]] = {}
    for key, info in base.tensors.items():
        if key.endswith("bias") or len(info.shape) < 2 or not info.dtype.startswith(("F", "BF")):
            continue
        kohya, _ = naming.kohya_keys(key)
        for place, part in enumerate(kohya):
            stems[naming.stem(part)] = (key, place)
    return stems


def _targets(
    naming: Naming,
    base: SafetensorsHeader,
    stems: Mapping[str, tuple[str, int]],
    modules: Mapping[str, Module],
) -> dict[str, Target]:
    """The base keys whose every part the LoRA trains (sd-mecha skips a partial stack)."""
    keys = sorted({stems[stem][0] for stem in modules})
    targets = {}
    for key in keys:
        kohya, transpose = naming.kohya_keys(key)
        parts = [modules.get(naming.stem(part)) for part in kohya]
        if all(part is not None for part in parts):
            shape = base.tensors[key].shape
            targets[key] = Target(shape, tuple(p for p in parts if p is not None), transpose)
    return targets


def _check_shapes(
    lora: SafetensorsHeader, base: SafetensorsHeader, targets: Mapping[str, Target], span: Span
) -> None:
    for key, target in targets.items():
        size = math.prod(base.tensors[key].shape) // len(target.modules)
        for module in target.modules:
            problem = _shape_problem(lora, module, size)
            if problem is not None:
                message = f"the LoRA module '{module.stem}' does not fit '{key}': {problem}"
                raise MircError([Diagnostic.error("merge-lora", message, span)])


def _shape_problem(lora: SafetensorsHeader, module: Module, size: int) -> str | None:
    up, down = lora.tensors[module.up].shape, lora.tensors[module.down].shape
    if len(up) < 2 or len(down) < 2:
        return f"lora_up {list(up)} and lora_down {list(down)} must be matrices or kernels"
    inner, made = math.prod(up[1:]), up[0] * math.prod(down[1:])
    if module.mid is not None:
        mid = lora.tensors[module.mid].shape
        if len(mid) < 2 or (mid[0], mid[1]) != (inner, down[0]):
            return f"lora_mid {list(mid)} does not join lora_up {list(up)} to lora_down"
        made *= math.prod(mid[2:])
    elif inner != down[0]:
        return f"lora_up {list(up)} and lora_down {list(down)} have different ranks"
    if module.alpha is not None and math.prod(lora.tensors[module.alpha].shape) != 1:
        return f"alpha has shape {list(lora.tensors[module.alpha].shape)}, not one value"
    if made != size:
        return f"it makes {made} values, the key has {size}"
    return None


def check_coverage(
    recipe: Recipe,
    compiled: Mapping[int, Node],
    order: Sequence[int],
    inputs: Mapping[int, ModelInput],
    keys: Iterable[str],
) -> list[Diagnostic]:
    """Keys a LoRA does not train for which the recipe then gives no value (before any read)."""
    loras = [i for i in inputs.values() if i.lora is not None]
    if not loras:
        return []
    lacking = [key for key in keys if not _has_value(compiled, order, inputs, key)]
    if not lacking:
        return []
    lora = next(
        (i for i in loras if i.lora is not None and lacking[0] not in i.lora.targets), loras[0]
    )
    model = recipe.expressions[lora.index]
    assert isinstance(model, Model)
    base = next(i.index for i in inputs.values() if i.lora is None)
    message = (
        f"the recipe gives no value for '{lacking[0]}' ({len(lacking)} keys): "
        f"the LoRA '{lora.name}' does not train it"
    )
    notes = (
        f'fall back on the base where the LoRA has no delta: merge "fallback" &{order[-1]} '
        f"&{base} (sd-mecha's add_difference does), or give --missing fallback",
    )
    return [Diagnostic.error("merge-lora-coverage", message, model.path.span, notes)]


def _has_value(
    compiled: Mapping[int, Node],
    order: Sequence[int],
    inputs: Mapping[int, ModelInput],
    key: str,
) -> bool:
    """Whether the output has a value for ``key``: an input has it if it holds (or, a LoRA,
    trains) it; a literal if its value for the key does (a constant always: the plan has left
    out the keys a literal has none for); a merge if all its inputs have it, or any for one
    that tolerates a lack."""
    present: dict[int, bool] = {}
    for index in order:
        node = compiled[index]
        if isinstance(node, int):
            model = inputs[node]
            held = model.lora.targets if model.lora is not None else model.header.tensors
            present[index] = key in held
            continue
        if isinstance(node, LiteralValues):
            given = node.values.get(key)
            present[index] = given is None or given[0] != "ref" or present[given[1]]  # type: ignore[index]
            continue
        refs = [present[op[1]] for op in operands(node) if op[0] == "ref"]  # type: ignore[index]
        present[index] = any(refs) if node.missing_tolerant else all(refs)
    return present[order[-1]]
