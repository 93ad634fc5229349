"""Cross-checks of the derived original layouts against code and data we did not write.

1. diffusers' own single-file converters run on meta tensors shaped like a derived original layout
   must give exactly the diffusers layout, use every tensor, and load into the meta model with
   strict key and shape matching;
2. sd-mecha's model configurations (key lists with shapes taken from real checkpoints) must agree
   with the derived layouts where they describe the same component.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers.loaders import single_file_utils as sfu

from tools.fingerprinting.configs import Layout, state_layout


class CrossCheckError(AssertionError):
    """A derived layout disagrees with diffusers' conversion or with sd-mecha's data."""


def meta_state(layout: Layout) -> dict[str, torch.Tensor]:
    """A state dict of meta tensors with ``layout``'s names and shapes."""
    return {key: torch.empty(shape, device="meta") for key, shape in layout.items()}


def shapes(state: Mapping[str, torch.Tensor]) -> Layout:
    return {key: tuple(tensor.shape) for key, tensor in state.items()}


def expect_same(got: Layout, expected: Layout, what: str) -> None:
    """``got`` and ``expected`` name the same tensors with the same shapes."""
    missing = sorted(expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    wrong = sorted(k for k in got.keys() & expected.keys() if got[k] != expected[k])
    if missing or unexpected or wrong:
        detail = [f"missing {missing[:5]}", f"unexpected {unexpected[:5]}"]
        detail.append(f"wrong shapes {[(k, got[k], expected[k]) for k in wrong[:5]]}")
        raise CrossCheckError(f"{what}: " + "; ".join(detail))


def load_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Load ``state`` into the meta ``model``: every key known, every shape right, nothing missing
    but the tied copies the library does not save."""
    if not hasattr(model, "text_model") and model.__class__.__name__ == "CLIPTextModel":
        state = {key.removeprefix("text_model."): value for key, value in state.items()}
    result = model.load_state_dict(dict(state), strict=False, assign=True)
    tie = getattr(model, "tie_weights", None)
    if callable(tie):
        tie()  # assign=True replaced the shared tensors one by one
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise CrossCheckError(
            f"{what}: missing {sorted(missing)[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


def check_ldm_unet(original: Layout, config: dict[str, Any], model: torch.nn.Module) -> None:
    """``convert_ldm_unet_checkpoint`` maps every ldm/sgm tensor, one to one, onto the model."""
    state = meta_state(original)
    converted = sfu.convert_ldm_unet_checkpoint(state, config)
    _converted_matches(converted, model, "ldm UNet")
    if {id(t) for t in converted.values()} != {id(t) for t in state.values()}:
        raise CrossCheckError("ldm UNet: the conversion is not one to one")


def check_ldm_vae(original: Layout, config: dict[str, Any], model: torch.nn.Module) -> None:
    """``convert_ldm_vae_checkpoint`` maps every ldm autoencoder tensor onto the model."""
    converted = sfu.convert_ldm_vae_checkpoint(meta_state(original), config)
    _converted_matches(converted, model, "ldm VAE")
    if len(converted) != len(original):
        raise CrossCheckError("ldm VAE: the conversion is not one to one")


def check_ldm_clip(original: Layout, model: torch.nn.Module, hub: Layout) -> None:
    """``convert_ldm_clip_checkpoint`` strips the ldm/sgm prefix and leaves the hub layout."""
    converted = sfu.convert_ldm_clip_checkpoint(meta_state(original))
    expect_same(shapes(converted), hub, "ldm CLIP")
    load_strict(model, converted, "ldm CLIP")


def check_open_clip(
    original: Layout, prefix: str, model: torch.nn.Module, hub: Layout, ignored: Iterable[str]
) -> None:
    """``convert_open_clip_checkpoint`` turns the open_clip layout into the hub layout; the only
    tensors it leaves out are ``ignored`` (SD 2's 24th block and projection)."""
    state = meta_state(original)
    converted = sfu.convert_open_clip_checkpoint(model, state, prefix=prefix)
    expect_same(shapes(converted), hub, "open_clip")
    load_strict(model, converted, "open_clip")
    ignored = set(ignored)
    kept = {k: v for k, v in state.items() if k not in ignored}
    if shapes(sfu.convert_open_clip_checkpoint(model, kept, prefix=prefix)) != shapes(converted):
        raise CrossCheckError("open_clip: the ignored tensors are used by the conversion")
    if not ignored <= set(sfu.SD_2_TEXT_ENCODER_KEYS_TO_IGNORE):
        raise CrossCheckError(f"open_clip: {sorted(ignored)} are not what diffusers ignores")


def check_sd3_t5(original: Layout, model: torch.nn.Module, hub: Layout) -> None:
    """``convert_sd3_t5_checkpoint_to_diffusers`` strips the SD3 all-in-one prefix."""
    converted = sfu.convert_sd3_t5_checkpoint_to_diffusers(meta_state(original))
    expect_same(shapes(converted), hub, "SD3 T5")
    load_strict(model, converted, "SD3 T5")


def check_popping(original: Layout, convert: str, model: torch.nn.Module, what: str) -> None:
    """The SD3/FLUX converters pop what they use: nothing may be left over."""
    state = meta_state(original)
    converted = getattr(sfu, convert)(state)
    if state:
        raise CrossCheckError(f"{what}: tensors left unconverted: {sorted(state)[:5]}")
    _converted_matches(converted, model, what)


def _converted_matches(
    converted: Mapping[str, torch.Tensor], model: torch.nn.Module, what: str
) -> None:
    expect_same(shapes(converted), state_layout(model), what)
    load_strict(model, converted, what)


# ---- sd-mecha model configurations -----------------------------------------------------------

# sd-mecha's configuration files are regular: after "components:", one two-space-indented line
# per component, then one "    key: {shape: [...], dtype: ..., optional: true}" line per tensor.
# A regular expression reads them in a tenth of a YAML parser's time; any other line is an error.
_COMPONENT = re.compile(r"  ([A-Za-z0-9_]+):")
_TENSOR = re.compile(r"    (\S+): \{shape: \[([0-9, ]*)\](.*)\}")


@functools.cache
def _sd_mecha_config(config_id: str) -> dict[str, dict[str, tuple[tuple[int, ...], bool]]]:
    spec = importlib.util.find_spec("sd_mecha")
    if spec is None or spec.origin is None:
        raise CrossCheckError("sd-mecha is not installed")
    folder = Path(spec.origin).parent / "extensions" / "builtin" / "model_configs"
    components: dict[str, dict[str, tuple[tuple[int, ...], bool]]] = {}
    current: dict[str, tuple[tuple[int, ...], bool]] = {}
    lines = (folder / f"{config_id}.yaml").read_text().splitlines()
    for line in lines[lines.index("components:") + 1 :]:
        if m := _COMPONENT.fullmatch(line):
            current = components.setdefault(m[1], {})
        elif m := _TENSOR.fullmatch(line):
            shape = tuple(int(size) for size in m[2].split(",") if size.strip())
            current[m[1]] = (shape, "optional: true" in m[3])
        else:
            raise CrossCheckError(f"sd-mecha {config_id}: unexpected line {line!r}")
    return components


def sd_mecha_components(config_id: str) -> list[str]:
    """The component names of an sd-mecha model configuration."""
    return list(_sd_mecha_config(config_id))


def sd_mecha_component(config_id: str, component: str) -> tuple[Layout, Layout]:
    """(required, optional) tensors of one component of an sd-mecha model configuration."""
    required: Layout = {}
    optional: Layout = {}
    for key, (shape, is_optional) in _sd_mecha_config(config_id)[component].items():
        (optional if is_optional else required)[key] = shape
    return required, optional


def check_against_sd_mecha(
    layout: Layout, optional: Layout, config_id: str, component: str, prefix: str = ""
) -> None:
    """sd-mecha's required tensors are all in ``layout``; every tensor of ``layout`` is one
    sd-mecha knows; shapes agree. ``prefix`` is stripped from sd-mecha's names first."""
    required, may = sd_mecha_component(config_id, component)
    required = {k.removeprefix(prefix): v for k, v in required.items()}
    known = {**required, **{k.removeprefix(prefix): v for k, v in may.items()}}
    what = f"sd-mecha {config_id}/{component}"
    absent = sorted(required.keys() - layout.keys() - optional.keys())
    unknown = sorted(layout.keys() - known.keys())
    if absent or unknown:
        raise CrossCheckError(f"{what}: absent {absent[:5]}, unknown to sd-mecha {unknown[:5]}")
    merged = {**optional, **layout}
    wrong = sorted(k for k in known.keys() & merged.keys() if known[k] != merged[k])
    if wrong:
        raise CrossCheckError(f"{what}: shapes differ for {wrong[:5]}")
