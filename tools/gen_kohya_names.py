"""Write sd-mecha's kohya LoRA key names to ``compiler/merge/kohya_names.json``.

A kohya LoRA names each module it trains after a key of a *kohya-layout* model (sd-mecha's
``sd1-kohya``, ``sdxl-kohya``, ``sdxl-kohya_but_diffusers``): ``lora_`` + the key without its
``.weight``, dots made underscores. Checkpoints are in the original layout (``sd1-ldm``,
``sdxl-sgm``), and sd-mecha links the two layouts with conversion methods whose key maps are
tables in its code (the diffusers conversion script's). ``mirc merge`` needs those maps without
importing sd-mecha (a test-only dependency), so this tool asks sd-mecha for them —
``MergeMethod.build_key_map`` of each ``convert_'<kohya>'_to_'<original>'`` — and writes them as
prefix rules: ``"model.diffusion_model.input_blocks.1.1": "unet.down_blocks.0.attentions.0"``
renames every key under the first dotted prefix to the same key under the second; the longest
rule that matches a key wins. Keys that one rule cannot say (SDXL's OpenCLIP ``in_proj_weight``,
three kohya keys stacked; its ``text_projection``, transposed) are written whole under
``joined``. The tool checks that the rules give back sd-mecha's map for every key before writing.

Run it after upgrading sd-mecha; ``--check`` only compares, and ``tests/test_merge_lora.py``
fails while the committed file and the installed sd-mecha disagree::

    python3 tools/gen_kohya_names.py [--check]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sd_mecha.extensions import merge_methods, model_configs
from sd_mecha.extensions.builtin.lycoris import LoraAlgorithm, LycorisModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run by path: the repository
from tools.datafile import write_or_check

TARGET = Path(__file__).resolve().parent.parent / "compiler" / "merge" / "kohya_names.json"
KOHYA = "kohya"  # sd-mecha's identifier of the kohya LoRA naming (``lycoris`` is LyCORIS's)

Pair = tuple[str, tuple[str, ...], bool]  # original key, its kohya keys, transposed


def lora_configs() -> list[LycorisModelConfig]:
    """sd-mecha's kohya LoRA configs, in a stable order."""
    found = [
        config
        for config in model_configs.get_all()
        if isinstance(config, LycorisModelConfig) and config.lycoris_identifier == KOHYA
    ]
    return sorted(found, key=lambda config: config.identifier)


def original_of(kohya: str) -> tuple[str, Any]:
    """The conversion from a kohya-layout config to the original layout, and its target."""
    for method in merge_methods.get_all_converters():
        name = method.identifier
        if name.startswith(f"convert_'{kohya}'_to_'"):
            target = name.removeprefix(f"convert_'{kohya}'_to_'").removesuffix("'")
            return name, model_configs.resolve(target)
    raise LookupError(f"sd-mecha has no conversion from {kohya}")


def lora_trainable(config: Any) -> set[str]:
    """The kohya-layout keys a LoRA can train (sd-mecha's ``_to_lycoris_keys`` rule)."""
    return {
        key
        for key, meta in config.keys().items()
        if not key.endswith("bias")
        and getattr(meta.dtype, "is_floating_point", True)
        and (meta.shape is None or len(meta.shape) >= 2)
    }


def pairs(conversion: str, kohya: Any, original: Any) -> list[Pair]:
    """Each original-layout key built from LoRA-trainable kohya keys, as sd-mecha maps it."""
    method = merge_methods.resolve(conversion)
    key_map = method.build_key_map([kohya], {}, original)
    trainable = lora_trainable(kohya)
    found: list[Pair] = []
    for relation in key_map:
        (clause,) = relation.clauses
        (inputs,) = clause.by_param.values()
        if all(key in trainable for key in inputs):
            for output in relation.outputs:
                found.append((output, tuple(inputs), clause.meta is True and _transposes(kohya)))
    return sorted(found)


def _transposes(kohya: Any) -> bool:
    """The SDXL conversions' metadata means "transpose"; SD1's means a VAE reshape, which a
    reshape to the checkpoint's shape does anyway."""
    return not kohya.identifier.startswith("sd1-")


def prefix_rule(original: str, kohya: str) -> tuple[str, str]:
    """The two keys without their longest common dotted tail that starts with a name: a tail
    starting with an index (``1.proj_in.weight``) would make a rule of a coincidence."""
    a, b = original.split("."), kohya.split(".")
    same = 0
    while same < min(len(a), len(b)) - 1 and a[-1 - same] == b[-1 - same]:
        same += 1
    while same and a[-same].isdigit():
        same -= 1
    return ".".join(a[: len(a) - same]), ".".join(b[: len(b) - same])


def rename(key: str, rules: dict[str, str]) -> str:
    """``key`` under the longest rule whose prefix it has (``compiler.merge.lora`` reads the
    rules the same way)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in rules:
            return ".".join([rules[prefix], *parts[end:]])
    return key


def rules_for(found: list[Pair]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Prefix rules and whole keys that give back every pair."""
    simple = [(o, k[0]) for o, k, t in found if len(k) == 1 and not t]
    votes = Counter(prefix_rule(o, k) for o, k in simple)
    rules: dict[str, str] = {}
    for (prefix, target), _ in sorted(votes.items(), key=lambda item: (-item[1], item[0])):
        rules.setdefault(prefix, target)
    joined: dict[str, dict[str, Any]] = {
        o: {"parts": list(k), "transpose": t} for o, k, t in found if len(k) > 1 or t
    }
    for original, kohya in simple:
        if rename(original, rules) != kohya:
            rules[original] = kohya
    for original, kohya in simple:
        assert rename(original, rules) == kohya, (original, kohya)
    return dict(sorted(rules.items())), dict(sorted(joined.items()))


def naming(config: LycorisModelConfig) -> dict[str, Any]:
    kohya = config.base_config
    conversion, original = original_of(kohya.identifier)
    rules, joined = rules_for(pairs(conversion, kohya, original))
    return {
        "lora_config": config.identifier,
        "to_base": f"convert_'{config.identifier}'_to_base",
        "kohya_config": kohya.identifier,
        "to_original": conversion,
        "original_config": original.identifier,
        "prefix": config.prefix,
        "rules": rules,
        "joined": joined,
    }


def build_names() -> dict[str, Any]:
    """The names as the installed sd-mecha has them."""
    return {
        "about": "sd-mecha's kohya LoRA key names, written by tools/gen_kohya_names.py",
        "sd_mecha_version": version("sd-mecha"),
        "suffixes": list(LoraAlgorithm.suffixes),
        "namings": [naming(config) for config in lora_configs()],
    }


def render(names: dict[str, Any]) -> str:
    return json.dumps(names, indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    return write_or_check(__doc__.splitlines()[0], TARGET, lambda: render(build_names()), __file__)


if __name__ == "__main__":
    raise SystemExit(main())
