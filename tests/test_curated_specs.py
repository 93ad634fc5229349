"""The curated family specs: their fingerprints are exactly what ``tools/fingerprints.py`` derives
from the real diffusers/transformers classes (meta device), every curated variant carries the
fields a complete spec needs, fingerprints tell rival variants apart, and the registry links."""

from __future__ import annotations

import fnmatch
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler.lang.mir import parse_mir
from compiler.link import LinkedRegistry, variant_key
from compiler.merge.blocks import Family
from compiler.registry import check_registry
from tests.conftest import ROOT
from tools.fingerprinting.catalog import PLANS, indistinguishable
from tools.fingerprinting.derive import PEFT_TARGETS, Derivation, derive
from tools.fingerprinting.lora import with_rank
from tools.fingerprinting.plan import VariantPlan
from tools.fingerprints import SD_MECHA, check_sd_mecha, variant_values

# One worker derives once: the derivation (meta models, conversions) is the slow part.
pytestmark = pytest.mark.xdist_group("curated-specs")

SPEC = Path(ROOT, "spec")
ORIGINAL_FORMATS = {"ldm", "sgm", "sai", "bfl"}
TEXT_ENCODERS = {"text_encoder", "text_encoder_2", "text_encoder_3"}
PLAN_IDS = [f"{plan.path}:{plan.compat}" for plan in PLANS]


@pytest.fixture(scope="module")
def derivation() -> Derivation:
    return derive()


@pytest.fixture(scope="module")
def linked() -> LinkedRegistry:
    result = check_registry(SPEC, deep=True)
    assert result.ok, [
        f"{d.span}: {d.message}" if d.span else d.message for d in result.diagnostics
    ]
    assert result.linked is not None
    return result.linked


@functools.cache
def _load(path: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((SPEC / path).read_text(encoding="utf-8"), Loader=loader)  # type: ignore[no-any-return]


def _document(plan: VariantPlan) -> dict[str, Any]:
    return _load(plan.path)


def _variant(plan: VariantPlan) -> dict[str, Any]:
    return _document(plan)["variants"][plan.compat]  # type: ignore[no-any-return]


def _mir(plan: VariantPlan) -> str:
    series = str(_document(plan)["id"])
    return series if plan.compat == "base" else f"{series}:{plan.compat}"


def _fits(expected: list[int | None], actual: tuple[int | None, ...]) -> bool:
    return len(expected) == len(actual) and all(
        e is None or e == a for e, a in zip(expected, actual, strict=True)
    )


def _matches(fingerprint: dict[str, Any], layout: dict[str, tuple[int | None, ...]]) -> bool:
    """What ``mirc identify`` does: every required key with a fitting shape, no forbidden key."""
    required = fingerprint["required"].items()
    if not all(key in layout and _fits(shape, layout[key]) for key, shape in required):
        return False
    return not any(key in layout for key in fingerprint.get("forbidden", ()))


def _file_layout(derivation: Derivation, source: str) -> dict[str, tuple[int | None, ...]]:
    found = derivation.sources[source]
    return dict(with_rank(found.layout, 4)) if found.is_lora else found.layout


# ---- the committed fingerprints are the derived ones ----------------------------------------


@pytest.mark.parametrize("plan", PLANS, ids=PLAN_IDS)
def test_committed_fingerprints_are_derived(plan: VariantPlan, derivation: Derivation) -> None:
    variant = _variant(plan)
    for name, value in variant_values(plan, derivation).items():
        assert variant.get(name) == value, f"{plan.path} {plan.compat}: {name} is stale"


def test_layouts_agree_with_sd_mecha(derivation: Derivation) -> None:
    check_sd_mecha(derivation)


def test_known_parameter_counts(derivation: Derivation) -> None:
    """Counts published for these networks (model cards, papers)."""
    assert derivation.parameters("sd1") == 859_520_964
    assert derivation.parameters("sdxl") == 2_567_463_684
    assert derivation.parameters("flux-dev") == 11_901_408_320
    assert derivation.parameters("kl-f8") == 83_653_863
    assert derivation.parameters("clip-l") == 123_060_480
    assert derivation.parameters("t5-xxl") == 4_762_310_656


# ---- fingerprints identify their own files and no rival's -----------------------------------


@pytest.mark.parametrize("plan", PLANS, ids=PLAN_IDS)
def test_fingerprints_match_their_own_layout(plan: VariantPlan, derivation: Derivation) -> None:
    for fingerprint, printed in zip(_variant(plan)["fingerprints"], plan.prints, strict=True):
        layout = _file_layout(derivation, printed.source)
        assert _matches(fingerprint, layout), printed.source
        for key, shape in fingerprint.get("optional", {}).items():
            assert key not in layout or _fits(shape, layout[key]), key


def test_fingerprints_reject_rival_variants(derivation: Derivation) -> None:
    ids = {id(plan): _mir(plan) for plan in PLANS}
    layouts = {name: _file_layout(derivation, name) for name in derivation.sources}
    clashes = []
    for plan in PLANS:
        for fingerprint in _variant(plan)["fingerprints"]:
            for rival in PLANS:
                if rival is plan or indistinguishable(plan, rival, ids[id(plan)], ids[id(rival)]):
                    continue
                for printed in rival.prints:
                    if _matches(fingerprint, layouts[printed.source]):
                        clashes.append((ids[id(plan)], fingerprint["format"], printed.source))
    assert not clashes


def test_forbidden_keys_belong_to_a_rival(derivation: Derivation) -> None:
    """A forbidden key must be one some other curated variant's files hold."""
    layouts = {name: _file_layout(derivation, name) for name in derivation.sources}
    for plan in PLANS:
        for fingerprint, printed in zip(_variant(plan)["fingerprints"], plan.prints, strict=True):
            for key in fingerprint.get("forbidden", ()):
                holders = [name for name, layout in layouts.items() if key in layout]
                assert holders and printed.source not in holders, (printed.source, key)


# ---- merge blocks -----------------------------------------------------------------------------


def _unet_plans() -> list[VariantPlan]:
    return [plan for plan in PLANS if plan.path.startswith("models/unet/")]


@pytest.mark.parametrize("plan", _unet_plans(), ids=[f"{p.path}:{p.compat}" for p in _unet_plans()])
def test_blocks_cover_every_unet_key_once(plan: VariantPlan, derivation: Derivation) -> None:
    for fingerprint, printed in zip(_variant(plan)["fingerprints"], plan.prints, strict=True):
        blocks = fingerprint["blocks"]
        keys = list(derivation.sources[printed.source].layout)
        for other in printed.file or ():
            keys.extend(derivation.sources[other].layout)
        for key in keys:
            owners = [
                b for b, prefixes in blocks.items() if any(key.startswith(p) for p in prefixes)
            ]
            assert len(owners) == 1, (key, owners)
        levels = len(blocks["M00"]) and sum(name.startswith("IN") for name in blocks)
        assert levels == sum(name.startswith("OUT") for name in blocks) in (9, 12)


@pytest.mark.parametrize("plan", _unet_plans(), ids=[f"{p.path}:{p.compat}" for p in _unet_plans()])
def test_components_put_each_key_where_sd_mecha_does(
    plan: VariantPlan, derivation: Derivation
) -> None:
    """Every key of a whole-model file is in the component sd-mecha's configuration puts the
    part it comes from (the cross-check table ``SD_MECHA``: source → config, component)."""
    sd_mecha = {(source, config): component for source, config, component, *_ in SD_MECHA}
    for fingerprint, printed in zip(_variant(plan)["fingerprints"], plan.prints, strict=True):
        config = printed.sd_mecha_config
        if config is None:
            assert "components" not in fingerprint
            continue
        family = Family("", {}, {k: tuple(v) for k, v in fingerprint["components"].items()})
        for source in (printed.source, *(printed.file or ())):
            wanted = sd_mecha[source, config]
            for key in derivation.sources[source].layout:
                assert family.component_of(key) == wanted, (key, wanted)


# ---- completeness -------------------------------------------------------------------------


def _denoiser_plans() -> list[VariantPlan]:
    return [plan for plan in PLANS if plan.path.startswith(("models/unet/", "models/dit/"))]


def _series(plan: VariantPlan) -> dict[str, Any]:
    return _document(plan)


@pytest.mark.parametrize("plan", PLANS, ids=PLAN_IDS)
def test_every_curated_variant_is_described(plan: VariantPlan) -> None:
    series, variant = _series(plan), _variant(plan)
    assert series.get("name") and series.get("description")
    assert variant.get("name") and variant.get("description")
    # the curated backend comes first; the import may append upstream's others after it
    assert variant.get("backends") and variant["backends"][0].get("class")
    formats = {f["format"] for f in variant["fingerprints"]}
    if plan.base_model is not None:
        assert variant["base_model"] == plan.base_model
        assert {"kohya-lora", "peft-lora"} <= formats
        return
    assert series.get("links") and variant.get("repo") and variant.get("license")
    assert variant["parameters"] > 0
    assert formats & ORIGINAL_FORMATS and formats & {"diffusers", "transformers"}
    assert all(f["tensors"] > 0 and f["parameters"] > 0 for f in variant["fingerprints"])
    assert variant["backends"][0].get("precision")


@pytest.mark.parametrize(
    "plan", _denoiser_plans(), ids=[f"{p.path}:{p.compat}" for p in _denoiser_plans()]
)
def test_denoisers_are_complete(plan: VariantPlan) -> None:
    variant = _variant(plan)
    backend = variant["backends"][0]
    assert backend["package"] == "diffusers"
    assert backend["generation"] and backend["scheduler"] and backend["precision"]
    assert variant["denoiser"] == ("unet" if "/unet/" in plan.path else "transformer")
    assert "vae" in variant["components"] and variant["components"].keys() & TEXT_ENCODERS
    training = variant["training"]
    for field in ("methods", "resolution", "batch_size", "learning_rate", "optimizer"):
        assert training.get(field), field
    assert training["lora"]["rank"] and training["lora"]["alpha"]
    assert len(training["layers"]) >= 2


EXPECTED_OBJECTIVES = {
    "mir:info.unet.stable-diffusion-v1": "epsilon",
    "mir:info.unet.stable-diffusion-2": "v-prediction",
    "mir:info.unet.stable-diffusion-2:512px": "epsilon",
    "mir:info.unet.stable-diffusion-xl": "epsilon",
    "mir:info.unet.stable-diffusion-xl:refiner": "epsilon",
    "mir:info.dit.stable-diffusion-3": "flow-matching",
    "mir:info.dit.stable-diffusion-3:3-5-large": "flow-matching",
    "mir:info.dit.stable-diffusion-3:3-5-medium": "flow-matching",
    "mir:info.dit.flux-1-dev": "flow-matching",
    "mir:info.dit.flux-1-schnell": "flow-matching",
}


def test_objectives() -> None:
    found = {_mir(plan): _variant(plan)["objective"] for plan in _denoiser_plans()}
    assert found == EXPECTED_OBJECTIVES


def test_a_training_section_uses_the_mmpretrain_shorthand() -> None:
    descriptors = [_variant(p)["training"].get("descriptor") for p in _denoiser_plans()]
    assert "8xb4-amp-coslr-10e" in descriptors


@pytest.mark.parametrize(
    "plan", _denoiser_plans(), ids=[f"{p.path}:{p.compat}" for p in _denoiser_plans()]
)
def test_training_rules_name_real_layers(plan: VariantPlan, derivation: Derivation) -> None:
    """LoRA targets are diffusers' own; block rules name merge blocks of the diffusers layout;
    glob rules match parameters of the diffusers model."""
    variant = _variant(plan)
    family = "unet" if "/unet/" in plan.path else ("flux" if "flux" in plan.path else "sd3")
    assert tuple(variant["training"]["lora"]["target_modules"]) == PEFT_TARGETS[family]
    diffusers = next(f for f in variant["fingerprints"] if f["format"] == "diffusers")
    names = list(derivation.sources[f"{plan.model}/diffusers"].layout)
    for rule in variant["training"]["layers"]:
        if "block" in rule:
            assert rule["block"] in diffusers["blocks"], rule
        else:
            assert fnmatch.filter(names, rule["match"]), rule


# ---- the registry ---------------------------------------------------------------------------


def test_components_link_to_curated_specs(linked: LinkedRegistry) -> None:
    curated = {_mir(plan) for plan in PLANS}
    for plan in _denoiser_plans():
        variant = linked.variants[variant_key(parse_mir(_mir(plan)), linked.taxonomy)]
        assert "vae" in variant.components and variant.components.keys() & TEXT_ENCODERS
        for role in variant.components:
            target = linked.resolve(variant, f"components.{role}")
            assert str(target.id).removesuffix(":base") in curated, (plan.path, role)


def test_registry_checks_clean(linked: LinkedRegistry) -> None:
    assert len(linked.targets) >= 13
    assert {str(s) for s in linked.series} >= {
        "mir:info.unet.stable-diffusion-v1",
        "mir:info.dit.flux-1-schnell",
        "mir:info.lora.hyper",
        "mir:ops.precision.bfloat",
    }
