"""Key prefixes: the wrappers trainers put around a whole state dict, and the prefixes under which
a checkpoint holds one component.

Fingerprints name keys as a format writes them (``model.diffusion_model.input_blocks.0.0.weight``
in an ldm single file, ``conv_in.weight`` in a diffusers folder). A file is matched through
*views*: each view is a prefix put in front of every fingerprint key before it is looked up. The
empty view reads the file as it is; a wrapper view reads a file that a trainer saved wrapped
(``module.`` from DistributedDataParallel); a component view reads one component of a bigger
file with a fingerprint written for that component alone (a diffusers UNet saved under
``unet.``, a FLUX transformer under ``model.diffusion_model.`` as ComfyUI saves it). Views are
only tried for prefixes the file has, so the cost stays a few dictionary lookups per candidate.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import NamedTuple


class Prefix(NamedTuple):
    """A key prefix and what a file that has it holds under it."""

    text: str
    holds: str


# Put around every key by the trainer that saved the file; stripped when every key has it.
WRAPPERS: tuple[Prefix, ...] = (
    Prefix("module.", "a model saved from DistributedDataParallel or DataParallel"),
    Prefix("model.", "a model saved from a Lightning module or EMA wrapper"),
    Prefix("state_dict.", "a training checkpoint's state dict, flattened"),
)

# One component of a larger file; a fingerprint written for the component alone matches under it.
COMPONENTS: tuple[Prefix, ...] = (
    Prefix("model.diffusion_model.", "the denoiser of an ldm/sgm/sai single file (or ComfyUI's)"),
    Prefix("first_stage_model.", "the VAE of an ldm/sgm single file"),
    Prefix("cond_stage_model.transformer.", "the CLIP text encoder of an SD 1 single file"),
    Prefix("cond_stage_model.model.", "the OpenCLIP text encoder of an SD 2 single file"),
    Prefix("conditioner.embedders.0.transformer.", "SDXL's first text encoder (CLIP-L)"),
    Prefix("conditioner.embedders.1.model.", "SDXL's second text encoder (OpenCLIP bigG)"),
    Prefix("conditioner.embedders.0.model.", "the SDXL refiner's text encoder (OpenCLIP bigG)"),
    Prefix("text_encoders.clip_l.transformer.", "SD3's CLIP-L text encoder"),
    Prefix("text_encoders.clip_g.transformer.", "SD3's CLIP-G text encoder"),
    Prefix("text_encoders.t5xxl.transformer.", "SD3's T5-XXL text encoder"),
    Prefix("vae.", "a diffusers pipeline's VAE, saved as one file"),
    Prefix("unet.", "a diffusers UNet, or a peft LoRA of one"),
    Prefix("transformer.", "a diffusers transformer, or a peft LoRA of one"),
    Prefix("text_encoder.", "a diffusers text encoder, or a peft LoRA of one"),
    Prefix("text_encoder_2.", "a diffusers pipeline's second text encoder"),
    Prefix("lora_unet_", "a kohya LoRA of the denoiser (fingerprints name these keys whole)"),
    Prefix("lora_te_", "a kohya LoRA of the text encoder"),
)

_COMPONENT_TEXTS = tuple(c.text for c in COMPONENTS)

# Keys that only mark how a model was trained; they are no part of its layout's identity.
MARKER_KEYS = frozenset({"v_pred", "ztsnr"})
# Other weights a fine-tune may carry beside the model's own (an EMA copy); not the model.
EXTRA_PREFIXES: tuple[str, ...] = ("model_ema.", "ema.", "ema_model.")


class KeyIndex(NamedTuple):
    """A file's tensor names, sorted, so that prefix questions are two binary searches."""

    sorted_names: list[str]
    name_set: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> KeyIndex:
        listed = sorted(names)
        return cls(listed, frozenset(listed))

    @property
    def names(self) -> int:
        return len(self.sorted_names)

    def stripped(self, prefix: str) -> frozenset[str]:
        """The names that start with ``prefix``, with it taken off."""
        if not prefix:
            return self.name_set
        names = self.sorted_names
        low = bisect_left(names, prefix)
        high = low + self.under(prefix)
        return frozenset(name[len(prefix) :] for name in names[low:high])

    def under(self, prefix: str) -> int:
        """How many names start with ``prefix``."""
        if not prefix:
            return self.names
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return bisect_left(self.sorted_names, after) - bisect_left(self.sorted_names, prefix)


def wrapper_of(index: KeyIndex) -> str:
    """The wrappers around every key (``module.``, ``module.model.`` …), or ``""``."""
    found = ""
    for _ in range(len(WRAPPERS)):
        step = next((w.text for w in WRAPPERS if _all_under(index, found + w.text)), "")
        if not step:
            break
        found += step
    return found


def _all_under(index: KeyIndex, prefix: str) -> bool:
    """Whether every name starts with ``prefix``: the names are sorted, so every one does when
    the first and the last do."""
    names = index.sorted_names
    return not names or (names[0].startswith(prefix) and names[-1].startswith(prefix))


class Views(NamedTuple):
    """The prefixes to read a file through: ``bases`` (as it is, and unwrapped) and ``all``
    (the bases and each component prefix found under them)."""

    bases: tuple[str, ...]
    all: tuple[str, ...]


def views(index: KeyIndex) -> Views:
    """The views of a file: as it is, unwrapped, and each component found.

    A wrapper view is tried beside the plain one rather than instead of it: an SD3 denoiser saved
    alone has every key under ``model.`` (of ``model.diffusion_model.``), which is no wrapper.
    """
    wrapper = wrapper_of(index)
    bases = ("", wrapper) if wrapper else ("",)
    names, found = index.sorted_names, []
    for base in bases:  # every file asks this of every component: bisections, inline
        for text in _COMPONENT_TEXTS:
            prefix = base + text
            at = bisect_left(names, prefix)
            if at < len(names) and names[at].startswith(prefix):
                found.append(prefix)
    return Views(bases, tuple(dict.fromkeys([*bases, *found])))


def component_prefixes(region: str) -> tuple[str, ...]:
    """The component prefixes a fingerprint's keys start with: dropped, the fingerprint reads
    the component saved alone (an ldm VAE fingerprint reads a standalone VAE file)."""
    return tuple(c.text for c in COMPONENTS if region.startswith(c.text) and "." in c.text)


def common_region(keys: Iterable[str]) -> str:
    """The longest prefix ending in a dot that all ``keys`` share (``""`` when none)."""
    listed = list(keys)
    common, last = min(listed, default=""), max(listed, default="")
    while not last.startswith(common):
        common = common[: common.rfind(".", 0, len(common) - 1) + 1]
    return common[: common.rfind(".") + 1]
