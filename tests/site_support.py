"""A small registry for the site's tests: FLUX.1 [dev] with components, fingerprints, hashes and
a training section, a UNet beside it, two ops entries, and four targets of our own (a single
GPU, one 8-GPU node, two such nodes, and a GPU too small for anything)."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from tests.test_check import make_registry

FLUX = """\
spec_version: 1
kind: series
id: mir:info.dit.flux-1-dev
name: FLUX.1 [dev]
description: A 12B rectified-flow transformer for text-to-image, by Black Forest Labs.
links:
  paper: https://arxiv.org/abs/2403.03206
variants:
  base:
    repo: black-forest-labs/FLUX.1-dev
    license: flux-1-dev-non-commercial
    denoiser: transformer
    objective: flow-matching
    backends:
      - package: diffusers
        class: FluxPipeline
        generation:
          height: 1024
          width: 1024
          guidance_scale: 3.5
          num_inference_steps: 50
        precision: mir:ops.precision.bfloat:b16
        scheduler: mir:ops.scheduler.flowmatcheuler:discrete
    components:
      text_encoder: mir:info.aet.clip-l
      text_encoder_2: mir:info.stst.t5-xxl
      vae: mir:info.vae.flux-vae
    dimensions:
      hidden_size: 3072
      layers: 57
      heads: 24
      latent_channels: 16
      patch_size: 2
      vae_scale_factor: 8
    hashes:
      file_256:
        - sha256: 4610115bb0c89560703c892c59ac2742fa821e60ef5871b33493ba544683abd7
      layer_256:
        - ad8763121f98e28bc4a3d5a8b494c1e8f385f14abe92fc0ca5e4ab3191f3a881
    fingerprints:
      - format: diffusers
        component: transformer
        parameters: 11901408320
        tensors: 780
        required:
          x_embedder.weight: [3072, 64]
          single_transformer_blocks.37.proj_out.weight: [3072, 15360]
        forbidden: [guidance_in.in_layer.weight]
    training:
      methods: [lora, full]
      resolution: 1024
      batch_size: 16
      learning_rate: 0.0001
  mini:
    name: Flux Mini <3B>
    repo: TencentARC/flux-mini
    backends:
      - generation:
          num_inference_steps: 28
"""
CLIP = """\
spec_version: 1
kind: series
id: mir:info.aet.clip-l
name: CLIP ViT-L/14 text encoder
variants:
  base:
    parameters: 123060480
"""
T5 = """\
spec_version: 1
kind: series
id: mir:info.stst.t5-xxl
name: T5 v1.1 XXL encoder
variants:
  base:
    parameters: 4762310656
"""
FLUX_VAE = """\
spec_version: 1
kind: series
id: mir:info.vae.flux-vae
variants:
  base:
    parameters: 83819683
"""
UNET = """\
spec_version: 1
kind: series
id: mir:info.unet.toy-unet
name: Toy UNet
variants:
  base:
    repo: org/toy-unet
    backends:
      - package: diffusers
        class: StableDiffusionPipeline
        scheduler: mir:ops.scheduler.flowmatcheuler:discrete
"""
BFLOAT = """\
spec_version: 1
kind: ops
id: mir:ops.precision.bfloat
variants:
  b16:
    dtype: bf16
    backends:
      - package: torch
        class: bfloat16
"""
FLOWMATCH = """\
spec_version: 1
kind: ops
id: mir:ops.scheduler.flowmatcheuler
variants:
  discrete:
    backends:
      - package: diffusers
        class: FlowMatchEulerDiscreteScheduler
"""


def target(ident: str, name: str, memory: int, per_node: int = 1, nodes: int = 1) -> str:
    return f"""\
spec_version: 1
kind: target
id: {ident}
name: {name}
vendor: nvidia
device: cuda
memory_gib: {memory}
compute_capability: "8.9"
dtypes: [fp32, tf32, fp16, bf16]
attention: [flash-attention-2, sdpa]
devices_per_node: {per_node}
nodes: {nodes}
"""


TARGETS = {
    "targets/rtx-4090.yaml": target("rtx-4090", "RTX 4090 24GB", 24),
    "targets/h100x8.yaml": target("h100x8", "8x H100 80GB node", 80, per_node=8),
    "targets/h100x16.yaml": target("h100x16", "2 nodes of 8x H100 80GB", 80, 8, 2),
    "targets/edge-1g.yaml": target("edge-1g", "Edge GPU 1GB", 1),
}
MODELS = {
    "models/dit/flux-1-dev.yaml": FLUX,
    "models/aet/clip-l.yaml": CLIP,
    "models/stst/t5-xxl.yaml": T5,
    "models/vae/flux-vae.yaml": FLUX_VAE,
    "models/unet/toy-unet.yaml": UNET,
    "ops/precision/bfloat.yaml": BFLOAT,
    "ops/scheduler/flowmatcheuler.yaml": FLOWMATCH,
}


def site_registry(root: Path, targets: bool = True) -> Path:
    """The small registry under ``root/spec`` (without targets when ``targets`` is false)."""
    return make_registry(root, {**MODELS, **(TARGETS if targets else {})})


class _Scanner(HTMLParser):
    """Text, element ids and the URLs a built page names (href/src, with the tag)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            if name in ("href", "src"):
                self.urls.append((tag, name, value))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


@dataclass(frozen=True)
class Page:
    text: str  # whitespace runs as one space
    ids: frozenset[str]
    urls: tuple[tuple[str, str, str], ...]


def read_page(path: Path) -> Page:
    scanner = _Scanner()
    scanner.feed(path.read_text(encoding="utf-8"))
    return Page(
        " ".join("".join(scanner.text).split()), frozenset(scanner.ids), tuple(scanner.urls)
    )
