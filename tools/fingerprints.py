"""Derive the curated variants' state-dict fingerprints from the real model classes.

    python -m tools.fingerprints           # check spec/ against the derivation (exit 1 if stale)
    python -m tools.fingerprints --write   # rewrite the fingerprints and parameter counts

Every network is built from its published configuration on the meta device (no download, no
memory); original single-file layouts are derived by inverting diffusers' conversion mappings
and checked by running diffusers' converters forward and loading the result strictly into the
model, then against sd-mecha's model configurations. See tools/fingerprinting/.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tools.fingerprinting import crosscheck as x
from tools.fingerprinting.catalog import PLANS
from tools.fingerprinting.configs import parameter_count
from tools.fingerprinting.derive import Derivation, Source, derive
from tools.fingerprinting.plan import Print, VariantPlan

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
FINGERPRINT_ORDER = ("format", "component", "required", "optional", "forbidden", "tensors")


def fingerprint(plan: Print, d: Derivation) -> dict[str, Any]:
    """One fingerprint as the spec writes it."""
    source = d.sources[plan.source]
    full = [source.prefix + key for key in plan.required]
    missing = [key for key in full if key not in source.layout]
    if missing:
        raise KeyError(f"{plan.source}: required keys not in the layout: {missing}")
    result: dict[str, Any] = {"format": plan.format}
    if plan.component is not None:
        result["component"] = plan.component
    result["required"] = {key: list(source.layout[key]) for key in full}
    if plan.optional:
        result["optional"] = _optional(plan, source)
    if plan.forbidden:
        result["forbidden"] = _forbidden(plan, source)
    if not source.is_lora:
        result["tensors"] = len(source.layout)
        result["parameters"] = parameter_count(source.layout)  # type: ignore[arg-type]
    if plan.file is not None and source.block_of:
        result["blocks"] = blocks(_block_assignment(plan, source, d))
    if plan.sd_mecha_config is not None:
        result["components"] = components(plan.sd_mecha_config)
    return result


def _optional(plan: Print, source: Source) -> dict[str, list[int | None]]:
    pool = source.layout if source.is_lora else source.optional
    result = {}
    for key in (source.prefix + k for k in plan.optional):
        if key not in pool:
            raise KeyError(f"{plan.source}: optional key {key} unknown")
        result[key] = list(pool[key])
    return result


def _forbidden(plan: Print, source: Source) -> list[str]:
    keys = [source.prefix + key for key in plan.forbidden]
    present = [key for key in keys if key in source.layout or key in source.optional]
    if present:
        raise KeyError(f"{plan.source}: forbidden keys present in its own layout: {present}")
    return keys


def _block_assignment(plan: Print, source: Source, d: Derivation) -> dict[str, str]:
    """Every key of the file the print describes, with its block. Outside the UNet, supermerger
    puts the text encoders (and for SD 1/2 the VAE) in BASE; SDXL gives the VAE its own block."""
    vae_block = "VAE" if plan.format == "sgm" else "BASE"
    assignment = dict(source.block_of)
    for other in plan.file or ():
        for key in d.sources[other].layout:
            assignment[key] = vae_block if key.startswith("first_stage_model.") else "BASE"
    return assignment


def blocks(assignment: dict[str, str]) -> dict[str, list[str]]:
    """Each block's shortest key prefixes that hold keys of that block only."""
    table = prefix_table(assignment)
    return {block: table[block] for block in sorted(table, key=_block_order)}


def components(config: str) -> dict[str, list[str]]:
    """The components of an sd-mecha model configuration (in its order), each as the shortest
    key prefixes that hold keys of that component only: what ``pick_component`` and
    ``omit_component`` select. Every key sd-mecha knows counts, optional ones (EMA, the
    scheduler's buffers) included."""
    assignment = {}
    for name in x.sd_mecha_components(config):
        required, optional = x.sd_mecha_component(config, name)
        assignment.update(dict.fromkeys([*required, *optional], name))
    table = prefix_table(assignment)
    return {name: table[name] for name in x.sd_mecha_components(config)}


def prefix_table(assignment: dict[str, str]) -> dict[str, list[str]]:
    """Each group's shortest key prefixes that hold keys of that group only, sorted."""
    seen: dict[str, set[str]] = {}
    for key, group in assignment.items():
        for prefix in _prefixes(key):
            seen.setdefault(prefix, set()).add(group)
    result: dict[str, set[str]] = {}
    for key, group in assignment.items():
        prefix = next(p for p in _prefixes(key) if seen[p] == {group})
        result.setdefault(group, set()).add(prefix)
    return {group: sorted(prefixes) for group, prefixes in result.items()}


def _prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) + "." for n in range(1, len(parts))] + [key]


def _block_order(name: str) -> tuple[int, int]:
    m = re.fullmatch(r"([A-Z]+)(\d*)", name)
    assert m is not None
    rank = ("BASE", "IN", "M", "OUT", "VAE").index(m[1])
    return rank, int(m[2] or 0)


def variant_values(plan: VariantPlan, d: Derivation) -> dict[str, Any]:
    """What the script owns in a variant: its fingerprints and parameter count."""
    values: dict[str, Any] = {"fingerprints": [fingerprint(p, d) for p in plan.prints]}
    if plan.model is not None:
        values["parameters"] = d.parameters(plan.model)
    return values


def derived() -> dict[tuple[str, str], dict[str, Any]]:
    """(spec path, compatibility) -> the values the script writes there, all cross-checked."""
    d = derive()
    check_sd_mecha(d)
    return {(plan.path, plan.compat): variant_values(plan, d) for plan in PLANS}


# ---- cross-checks against sd-mecha --------------------------------------------------------

# (source, sd-mecha config, component, prefix stripped from sd-mecha's names, optional keys)
SD_MECHA: tuple[tuple[str, str, str, str, tuple[tuple[str, tuple[int, ...]], ...]], ...] = (
    ("sd1/ldm", "sd1-ldm", "diffuser", "", ()),
    ("clip-l/ldm", "sd1-ldm", "clip_l", "", ()),
    ("kl-f8/ldm", "sd1-ldm", "vae", "", ()),
    ("sd1/diffusers", "sd1-kohya", "diffuser", "unet.", ()),
    ("clip-l/hub", "sd1-kohya", "clip_l", "te.", ()),
    ("sdxl/ldm", "sdxl-sgm", "diffuser", "", ()),
    ("clip-l/sgm", "sdxl-sgm", "clip_l", "", ()),
    ("clip-g/sgm", "sdxl-sgm", "clip_g", "", ()),
    ("kl-f8-sdxl/ldm", "sdxl-sgm", "vae", "", ()),
    ("sdxl/diffusers", "sdxl-diffusers_unet_only", "diffuser", "", ()),
    ("sdxl/diffusers", "sdxl-kohya_but_diffusers", "diffuser", "unet.", ()),
    ("clip-g/hub", "sdxl-kohya", "clip_g", "te2.", ()),
    ("sd3/sai", "sd3-comfyui", "diffuser", "", (("model.model_sampling.sigmas", (1000,)),)),
    ("c16-sd3/ldm", "sd3-comfyui", "vae", "", ()),
    ("clip-l-proj/sai", "sd3-comfyui", "clip_l", "", ()),
    ("clip-g/sai", "sd3-comfyui", "clip_g", "", ()),
    ("t5-xxl/sai", "sd3-comfyui", "t5xxl", "", ()),
    ("flux-dev/bfl", "flux-flux", "diffuser", "model.diffusion_model.", ()),
    ("c16-flux/file", "flux-flux", "vae", "vae.", ()),
    ("clip-l/hub", "flux-flux", "clip_l", "text_encoders.clip_l.transformer.", ()),
    ("t5-xxl/hub", "flux-flux", "t5xxl", "text_encoders.t5xxl.transformer.", ()),
)
# kohya LoRA layouts and the sd-mecha configurations whose module names they adapt, with the
# stem each configuration prefix takes in a LoRA file (sd-mecha's own lycoris naming).
SD_MECHA_LORA = (
    ("lora-sd1/kohya", "sd1-kohya", {"unet.": "lora_unet_", "te.": "lora_te_"}),
    (
        "lora-sdxl/kohya",
        "sdxl-kohya",
        {"unet.": "lora_unet_", "te1.": "lora_te1_", "te2.": "lora_te2_"},
    ),
    (
        "lora-sdxl/kohya-diffusers",
        "sdxl-kohya_but_diffusers",
        {"unet.": "lora_unet_", "te1.": "lora_te1_", "te2.": "lora_te2_"},
    ),
)


def check_sd_mecha(d: Derivation) -> None:
    """The derived layouts agree with sd-mecha's key lists taken from real checkpoints."""
    for source, config, component, prefix, optional in SD_MECHA:
        found = d.sources[source]
        known = {**found.optional, **dict(optional)}
        x.check_against_sd_mecha(found.layout, known, config, component, prefix)  # type: ignore[arg-type]
    for source, config, stems in SD_MECHA_LORA:
        _check_lora_stems(d.sources[source].layout, config, stems)


def _check_lora_stems(layout: dict[str, Any], config: str, stems: dict[str, str]) -> None:
    modules = {}
    for component in x.sd_mecha_components(config):
        required, optional = x.sd_mecha_component(config, component)
        for key, shape in {**required, **optional}.items():
            for prefix, stem in stems.items():
                if key.startswith(prefix) and key.endswith(".weight"):
                    name = stem + key[len(prefix) : -len(".weight")].replace(".", "_")
                    modules[name] = shape
    for key, shape in layout.items():
        module, _, part = key.partition(".")
        if module not in modules:
            raise x.CrossCheckError(f"{config}: no module for LoRA key {key}")
        weight = modules[module]
        if part == "lora_down.weight" and shape[1:] != weight[1:]:
            raise x.CrossCheckError(f"{config}: {key} {shape} does not fit {weight}")
        if part == "lora_up.weight" and (shape[0], *shape[2:]) != (weight[0], *weight[2:]):
            raise x.CrossCheckError(f"{config}: {key} {shape} does not fit {weight}")


# ---- spec files ---------------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    yaml.preserve_quotes = True
    return yaml


def _styled(value: Any, depth: int = 0) -> Any:
    """Shapes and block prefix lists in flow style, everything else in block style."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        result = CommentedMap()
        for key, item in value.items():
            result[key] = _styled(item, depth + 1)
        return result
    if isinstance(value, list):
        seq = CommentedSeq(_styled(item, depth + 1) for item in value)
        if all(not isinstance(item, dict | list) for item in value) and depth > 1:
            seq.fa.set_flow_style()
        return seq
    return value


def write(values: dict[tuple[str, str], dict[str, Any]], paths: Iterable[str]) -> None:
    """Put the derived values into the spec files, keeping everything else they hold."""
    yaml = _yaml()
    for path in sorted(set(paths)):
        file = SPEC / path
        document = yaml.load(file.read_text(encoding="utf-8"))
        for (spec_path, compat), owned in values.items():
            if spec_path == path:
                _set_variant(document["variants"][compat], owned)
        _replace(file, document, yaml)


def _replace(file: Path, document: Any, yaml: Any) -> None:
    """Write beside ``file``, then rename over it: an interrupted run leaves the old file."""
    temporary = file.with_name(f".{file.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, file)


def _set_variant(variant: Any, owned: dict[str, Any]) -> None:
    keys = list(variant)
    for name in ("parameters", "fingerprints"):
        if name not in owned:
            continue
        value = _styled(owned[name])
        if name in variant:
            variant[name] = value
            continue
        anchor = "training" if "training" in keys else None
        position = keys.index(anchor) if anchor else len(keys)
        variant.insert(position, name, value)
        keys = list(variant)


def stale(values: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Variants whose spec file does not hold the derived values."""
    import yaml

    problems = []
    for (path, compat), owned in sorted(values.items()):
        file = SPEC / path
        if not file.is_file():
            problems.append(f"{path}: missing")
            continue
        variant = yaml.safe_load(file.read_text(encoding="utf-8"))["variants"].get(compat, {})
        for name, value in owned.items():
            if variant.get(name) != value:
                problems.append(f"{path}: variants.{compat}.{name} differs from the derivation")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the spec files")
    args = parser.parse_args(argv)
    values = derived()
    if args.write:
        write(values, (path for path, _ in values))
        return 0
    problems = stale(values)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python -m tools.fingerprints --write", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
