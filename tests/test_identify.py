"""``mirc identify`` and ``mirc fingerprint`` on sparse files with the real layouts.

The layouts come from ``tools.fingerprinting`` (the diffusers/transformers classes built on the
meta device, converted to the original single-file names and checked against diffusers'
converters); every file is a header over a hole, so a 12-billion-parameter FLUX costs nothing.
diffusers' own single-file detector (``infer_diffusers_model_type``) is the peer: wherever it
names a model type for a test file, mirc's answer must be the MIR id of that type.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
import yaml
from diffusers.loaders.single_file_utils import infer_diffusers_model_type
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.identify import FileReport, Pool, candidates, identify_file
from compiler.identify.match import score_all
from compiler.identify.pool import Candidate
from compiler.identify.prefixes import (
    COMPONENTS,
    WRAPPERS,
    KeyIndex,
    common_region,
    component_prefixes,
)
from compiler.ir import Fingerprint
from compiler.registry import check_registry
from compiler.tensorfile import TensorTable, layout_digest, parse_header, read_header, write_sparse
from tests import identify_oracle
from tests.conftest import ROOT, check_snapshot, run_mirc
from tools.fingerprinting.derive import Derivation, derive
from tools.fingerprinting.lora import with_rank

# One worker derives once: building the meta models is the slow part.
pytestmark = pytest.mark.xdist_group("identify")

Layout = Mapping[str, tuple[int | None, ...]]

SD1 = "mir:info.unet.stable-diffusion-v1"
SD2 = "mir:info.unet.stable-diffusion-2"
SDXL = "mir:info.unet.stable-diffusion-xl"
SD35_LARGE = "mir:info.dit.stable-diffusion-3:3-5-large"
FLUX_DEV = "mir:info.dit.flux-1-dev"
CLIP_L = "mir:info.vit.clip-l"
CLIP_G = "mir:info.vit.clip-g"
T5 = "mir:info.stst.t5-xxl"
KL_F8 = "mir:info.vae.kl-f8"
C16 = "mir:info.vae.kl-f8-c16"

# diffusers' model type names (infer_diffusers_model_type, diffusers 0.42.1) -> MIR ids.
DIFFUSERS_TYPES = {
    "v1": SD1,
    "v2": SD2,
    "xl_base": SDXL,
    "xl_refiner": "mir:info.unet.stable-diffusion-xl:refiner",
    "sd3": "mir:info.dit.stable-diffusion-3",
    "sd35_medium": "mir:info.dit.stable-diffusion-3:3-5-medium",
    "sd35_large": SD35_LARGE,
    "flux-dev": FLUX_DEV,
    "flux-schnell": "mir:info.dit.flux-1-schnell",
}
# The single files diffusers' detector reads: the denoiser in its original layout. SDXL's are
# told by text-encoder keys, so they are compared as whole checkpoints (CHECKPOINTS); "v1" is
# also the detector's answer for anything it does not know, so it is compared on denoisers only.
ORIGINAL_DENOISERS = {
    "sd1/ldm": "v1",
    "sd2/ldm": "v2",
    "sd3/sai": "sd3",
    "sd35-large/sai": "sd35_large",
    "sd35-medium/sai": "sd35_medium",
    "flux-dev/bfl": "flux-dev",
    "flux-schnell/bfl": "flux-schnell",
}
# Whole single-file checkpoints: their parts, and the MIR id each component must get.
CHECKPOINTS = {
    "sd15": (("sd1/ldm", "clip-l/ldm", "kl-f8/ldm"), {"unet": SD1, "text_encoder": CLIP_L}),
    "sdxl": (
        ("sdxl/ldm", "clip-l/sgm", "clip-g/sgm", "kl-f8-sdxl/ldm"),
        {"unet": SDXL},
    ),
    "sdxl-refiner": (
        ("sdxl-refiner/ldm", "clip-g/sgm-refiner", "kl-f8-sdxl/ldm"),
        {"unet": "mir:info.unet.stable-diffusion-xl:refiner", "text_encoder_2": CLIP_G},
    ),
    "sd35-large": (
        ("sd35-large/sai", "clip-l-proj/sai", "clip-g/sai", "t5-xxl/sai", "c16-sd3/ldm"),
        {"transformer": SD35_LARGE},
    ),
}
# Must-show: each file identifies as this MIR id (best or tied).
MUST_SHOW = {
    "sd1/diffusers": SD1,
    "sdxl/diffusers": SDXL,
    "sd35-large/diffusers": SD35_LARGE,
    "flux-dev/bfl": FLUX_DEV,
    "flux-dev/diffusers": FLUX_DEV,
    "kl-f8/diffusers": KL_F8,
    "kl-f8/file": KL_F8,
    "c16-flux/diffusers": f"{C16}:flux-1",
    "clip-l/hub": CLIP_L,
    "clip-g/hub": CLIP_G,
    "t5-xxl/hub": T5,
    "lora-sd1/kohya": "mir:info.lora.lora:stable-diffusion-v1",
    "lora-sdxl/kohya": "mir:info.lora.lora:stable-diffusion-xl",
    "lora-flux-dev/kohya": "mir:info.lora.lora:flux-1-dev",
    "lora-sdxl/peft": "mir:info.lora.lora:stable-diffusion-xl",
}


@pytest.fixture(scope="module")
def derivation() -> Derivation:
    return derive()


@pytest.fixture(scope="module")
def pool() -> Pool:
    result = check_registry(Path(ROOT, "spec"))
    assert result.linked is not None
    return candidates(result.linked)


def _layout(derivation: Derivation, source: str) -> dict[str, tuple[int, ...]]:
    found = derivation.sources[source]
    layout = with_rank(found.layout, 4) if found.is_lora else found.layout
    return {key: tuple(int(size or 0) for size in shape) for key, shape in layout.items()}


def _write(
    path: Path,
    layout: Mapping[str, tuple[int, ...]],
    dtype: str = "F16",
    metadata: Mapping[str, str] | None = None,
) -> Path:
    write_sparse(path, {key: (dtype, list(shape)) for key, shape in layout.items()}, metadata)
    return path


@pytest.fixture(scope="module")
def files(derivation: Derivation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One sparse file per derived source, and the whole single-file checkpoints."""
    folder = tmp_path_factory.mktemp("identify")
    written = {
        name: _write(folder / (name.replace("/", "_") + ".safetensors"), _layout(derivation, name))
        for name in derivation.sources
    }
    for name, (parts, _) in CHECKPOINTS.items():
        layout = {k: v for part in parts for k, v in _layout(derivation, part).items()}
        written[name] = _write(folder / f"{name}.safetensors", layout)
    return written


def _ids(report: FileReport, label: str | None = None) -> set[str]:
    """Every MIR id the report gives (best and tied), for one component or all."""
    return {
        s.candidate.mir
        for f in report.components
        if label is None or f.best.candidate.label == label
        for s in (f.best, *f.ties)
    }


def _best(report: FileReport) -> str:
    assert len(report.components) == 1, [f.best.candidate.mir for f in report.components]
    return report.components[0].best.candidate.mir


# ---- every family in each of its formats --------------------------------------------------


def test_every_source_is_identified(derivation: Derivation, files: dict[str, Path], pool) -> None:
    for name in derivation.sources:
        report = identify_file(files[name], pool)
        assert report.known, (name, [(s.candidate.mir, s.missing) for s in report.nearest])
        assert all(f.best.confidence == 1.0 for f in report.components), name


@pytest.mark.parametrize("name", sorted(MUST_SHOW))
def test_must_show_files(name: str, files: dict[str, Path], pool) -> None:
    assert MUST_SHOW[name] in _ids(identify_file(files[name], pool))


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_single_file_checkpoints_report_each_component(
    name: str, files: dict[str, Path], pool
) -> None:
    report = identify_file(files[name], pool)
    for label, mir in CHECKPOINTS[name][1].items():
        assert _ids(report, label) == {mir}
    labels = [f.best.candidate.label for f in report.components]
    assert "vae" in labels
    assert (
        labels.count("text_encoder")
        + labels.count("text_encoder_2")
        + labels.count("text_encoder_3")
        == len(CHECKPOINTS[name][0]) - 2
    )


def test_sdxl_checkpoint_components(files: dict[str, Path], pool) -> None:
    report = identify_file(files["sdxl"], pool)
    assert {CLIP_L, CLIP_G} <= _ids(report)
    assert _ids(report, "vae") == {KL_F8, f"{KL_F8}:stable-diffusion-xl"}  # a reported tie


def test_sd35_checkpoint_components(files: dict[str, Path], pool) -> None:
    report = identify_file(files["sd35-large"], pool)
    assert {f"{CLIP_L}:stable-diffusion-3", CLIP_G, T5} <= _ids(report)
    assert _ids(report, "vae") == {f"{C16}:stable-diffusion-3", f"{C16}:flux-1"}


@pytest.mark.parametrize(
    ("name", "tied"),
    [
        ("sd2/ldm", {SD2, f"{SD2}:512px"}),
        ("sd2/diffusers", {SD2, f"{SD2}:512px"}),
        ("kl-f8/diffusers", {KL_F8, f"{KL_F8}:stable-diffusion-xl"}),
        ("c16-sd3/diffusers", {f"{C16}:stable-diffusion-3", f"{C16}:flux-1"}),
    ],
)
def test_indistinguishable_pairs_are_a_tie(name: str, tied: set[str], files, pool) -> None:
    report = identify_file(files[name], pool)
    assert len(report.components) == 1
    assert _ids(report) == tied


def test_flux_loras_tie_dev_and_schnell(files: dict[str, Path], pool) -> None:
    for name in ("lora-flux-dev/kohya", "lora-flux-schnell/peft"):
        ids = _ids(identify_file(files[name], pool))
        assert {"mir:info.lora.lora:flux-1-dev", "mir:info.lora.lora:flux-1-schnell"} <= ids


def test_formats_are_reported(files: dict[str, Path], pool) -> None:
    expected = {
        "sd1/ldm": "ldm",
        "sd1/diffusers": "diffusers",
        "sdxl/ldm": "sgm",
        "sd35-large/sai": "sai",
        "flux-dev/bfl": "bfl",
        "kl-f8/diffusers": "diffusers",
        "lora-sdxl/kohya": "kohya-lora",
        "lora-sdxl/peft": "peft-lora",
    }
    for name, file_format in expected.items():
        report = identify_file(files[name], pool)
        assert report.components[0].best.candidate.fingerprint.format == file_format, name


# ---- diffusers is the peer ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ORIGINAL_DENOISERS))
def test_agrees_with_diffusers(name: str, derivation: Derivation, files, pool) -> None:
    state = {k: torch.empty(v, device="meta") for k, v in _layout(derivation, name).items()}
    model_type = infer_diffusers_model_type(state)
    assert model_type == ORIGINAL_DENOISERS[name]
    assert DIFFUSERS_TYPES[model_type] in _ids(identify_file(files[name], pool))


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_checkpoints_agree_with_diffusers(name: str, derivation: Derivation, files, pool) -> None:
    parts = CHECKPOINTS[name][0]
    state = {
        k: torch.empty(v, device="meta") for p in parts for k, v in _layout(derivation, p).items()
    }
    mir = DIFFUSERS_TYPES[infer_diffusers_model_type(state)]
    report = identify_file(files[name], pool)
    denoiser = next(
        f for f in report.components if f.best.candidate.label in ("unet", "transformer")
    )
    assert denoiser.best.candidate.mir == mir


# ---- perturbations ------------------------------------------------------------------------


def test_extra_keys_and_ema_lower_nothing_but_are_counted(
    derivation: Derivation, tmp_path: Path, pool
) -> None:
    layout = _layout(derivation, "sd1/ldm")
    ema = {"model_ema." + k.removeprefix("model.diffusion_model.").replace(".", ""): v
           for k, v in list(layout.items())[:50]}  # fmt: skip
    extra = {"some_trainer.step": (1,)}
    report = identify_file(_write(tmp_path / "ema.safetensors", {**layout, **ema, **extra}), pool)
    assert _best(report) == SD1
    assert report.extra_tensors == 50


def test_missing_optional_keys(derivation: Derivation, tmp_path: Path, pool) -> None:
    layout = _layout(derivation, "clip-l/ldm")
    layout.pop("cond_stage_model.transformer.text_model.embeddings.position_ids", None)
    assert _best(identify_file(_write(tmp_path / "clip.safetensors", layout), pool)) == CLIP_L


@pytest.mark.parametrize("wrapper", ["module.", "model.", "module.model."])
def test_wrapper_prefixes(wrapper: str, derivation: Derivation, tmp_path: Path, pool) -> None:
    layout = {wrapper + k: v for k, v in _layout(derivation, "sdxl/diffusers").items()}
    report = identify_file(_write(tmp_path / "wrapped.safetensors", layout), pool)
    assert _best(report) == SDXL
    assert report.components[0].best.view == wrapper


def test_component_prefixes(derivation: Derivation, tmp_path: Path, pool) -> None:
    """A diffusers UNet under ``unet.``, a FLUX transformer as ComfyUI saves it, a bare ldm UNet."""
    cases = {
        "unet.": ("sd1/diffusers", SD1),
        "model.diffusion_model.": ("flux-dev/bfl", FLUX_DEV),
    }
    for prefix, (source, mir) in cases.items():
        layout = {prefix + k: v for k, v in _layout(derivation, source).items()}
        assert _best(identify_file(_write(tmp_path / "p.safetensors", layout), pool)) == mir
    bare = {
        k.removeprefix("model.diffusion_model."): v
        for k, v in _layout(derivation, "sdxl/ldm").items()
    }
    assert _best(identify_file(_write(tmp_path / "bare.safetensors", bare), pool)) == SDXL


def test_dtype_copies_share_the_layout_hash(derivation: Derivation, tmp_path: Path, pool) -> None:
    layout = _layout(derivation, "flux-dev/bfl")
    reports = {
        dtype: identify_file(_write(tmp_path / f"{dtype}.safetensors", layout, dtype), pool)
        for dtype in ("F16", "BF16", "F8_E4M3")
    }
    assert {_best(r) for r in reports.values()} == {FLUX_DEV}
    assert len({r.hashes.layout for r in reports.values()}) == 1
    assert len({r.hashes.layout_dtype for r in reports.values()}) == 3
    assert reports["F8_E4M3"].dtypes[0].dtype == "F8_E4M3"
    assert reports["F16"].parameters == 11_901_408_320
    header = read_header(tmp_path / "BF16.safetensors")
    assert reports["BF16"].hashes.layout == layout_digest(header.tensors)
    assert reports["BF16"].hashes.layout_dtype == layout_digest(header.tensors, with_dtype=True)


def test_content_hash_only_when_asked(files: dict[str, Path], pool) -> None:
    assert identify_file(files["clip-l/hub"], pool).hashes.content is None
    hashed = identify_file(files["clip-l/hub"], pool, content_hash=True).hashes.content
    assert hashed is not None and len(hashed) == 64


@pytest.mark.parametrize(
    ("metadata", "markers", "kind", "ztsnr"),
    [
        ({"modelspec.prediction_type": "v"}, (), "v_prediction", False),
        ({"modelspec.predict_key": "epsilon"}, (), "epsilon", False),
        ({}, ("v_pred", "ztsnr"), "v_prediction", True),
        ({}, (), None, False),
    ],
)
def test_prediction_type(
    metadata: dict[str, str], markers: tuple[str, ...], kind, ztsnr, derivation, tmp_path, pool
) -> None:
    layout = {**_layout(derivation, "sdxl/ldm"), **{m: (0,) for m in markers}}
    report = identify_file(_write(tmp_path / "p.safetensors", layout, metadata=metadata), pool)
    assert (report.prediction.kind, report.prediction.ztsnr) == (kind, ztsnr)
    assert _best(report) == SDXL  # marker keys are no part of the layout


def test_prefix_table_is_documented() -> None:
    for prefix in (*WRAPPERS, *COMPONENTS):
        assert prefix.text.endswith((".", "_")) and prefix.holds


# ---- unknown and invalid files, pickles ---------------------------------------------------


def test_unknown_file_names_the_nearest(derivation: Derivation, tmp_path: Path, pool) -> None:
    layout = _layout(derivation, "sd1/ldm")
    layout["model.diffusion_model.out.2.weight"] = (8, 320, 3, 3)
    report = identify_file(_write(tmp_path / "odd.safetensors", layout), pool)
    assert not report.known
    assert report.nearest[0].candidate.mir == SD1
    assert report.nearest[0].missing == ("model.diffusion_model.out.2.weight",)
    assert report.nearest[0].reshaped == ("model.diffusion_model.out.2.weight",)


def test_pickle_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "model.ckpt"
    evil.write_bytes(pickle.dumps(Payload(), protocol=2))
    result = run_mirc("identify", str(evil))
    assert result.status == 1
    assert result.err.startswith(f"{evil}: error: this is a pickle checkpoint")
    assert not marker.exists()


def test_cli_unknown_and_invalid_files(derivation: Derivation, tmp_path: Path) -> None:
    layout = _layout(derivation, "kl-f8/diffusers")
    layout["decoder.conv_out.weight"] = (4, 128, 3, 3)
    _write(tmp_path / "a-unknown.safetensors", layout)
    (tmp_path / "b-invalid.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    _write(tmp_path / "c-clip.safetensors", _layout(derivation, "clip-l/hub"))
    result = run_mirc("identify", ".", cwd=tmp_path)
    assert result.status == 1
    assert "c-clip.safetensors:\n  text_encoder: mir:info.vit.clip-l" in result.out
    check_snapshot("identify/unknown-and-invalid.txt", result.out + "--- stderr\n" + result.err)


def test_cli_json(files: dict[str, Path]) -> None:
    result = run_mirc("identify", "--json", str(files["sd15"]), cwd=ROOT)
    assert result.status == 0, result.err
    (entry,) = json.loads(result.out)["files"]
    assert entry["known"] and entry["tensors"] == 1130
    by_component = {c["component"]: c for c in entry["components"]}
    assert by_component["unet"]["mir"] == SD1
    assert by_component["unet"]["format"] == "ldm"
    assert "model.diffusion_model.out.2.weight" in by_component["unet"]["matched"]
    assert [t["mir"] for t in by_component["vae"]["ties"]] == [f"{KL_F8}:stable-diffusion-xl"]
    assert entry["dtypes"] == {"F16": {"tensors": 1130, "parameters": entry["parameters"]}}
    assert entry["hashes"]["content"] is None


# ---- the indexed matcher scores what trying every candidate scores ------------------------


def _agrees_with_the_oracle(pool: Pool, tensors: TensorTable) -> None:
    index = KeyIndex(tensors.sorted_names(), tensors.name_set)
    for full in (False, True):
        indexed = score_all(pool, tensors, index, full=full)
        assert indexed == identify_oracle.score_all(pool, tensors, index, full=full)


def test_indexed_matching_agrees_on_every_test_file(files: dict[str, Path], pool: Pool) -> None:
    for path in files.values():
        _agrees_with_the_oracle(pool, read_header(path).tensors)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_indexed_matching_agrees_on_perturbed_files(
    derivation: Derivation, pool: Pool, data: st.DataObject
) -> None:
    """Files cut down, reshaped, prefixed and mixed from the real layouts: the nearest
    candidates of the unknown ones as well as the matches of the known ones."""
    sources = sorted(derivation.sources)
    layout = _layout(derivation, data.draw(st.sampled_from(sources)))
    if data.draw(st.booleans()):
        other = _layout(derivation, data.draw(st.sampled_from(sources)))
        prefix = data.draw(st.sampled_from(["", *(c.text for c in COMPONENTS)]))
        layout |= {prefix + key: shape for key, shape in other.items()}
    rng = data.draw(st.randoms(use_true_random=False))
    keep = data.draw(st.sampled_from([1.0, 0.99, 0.9, 0.5, 0.05]))
    layout = {k: v for k, v in layout.items() if rng.random() < keep} or {"w": (1,)}
    for key in rng.sample(sorted(layout), min(len(layout), data.draw(st.integers(0, 3)))):
        layout[key] = (*layout[key], 2)
    wrapper = data.draw(st.sampled_from(["", *(w.text for w in WRAPPERS)]))
    _agrees_with_the_oracle(pool, _table({wrapper + k: v for k, v in layout.items()}))


def test_indexed_matching_keeps_the_order_of_equal_scores() -> None:
    """Scores that rank equal keep the order every-candidate scoring gives them (by view, then
    by candidate; dropped prefixes after), so ties are reported the same way. Here each of 12
    candidates of 3 variants reads the file wrapped in ``module.`` both with and without its
    component prefix, equally well: first with every required key, then with half of them."""
    keys = [(f"first_stage_model.k{i}.weight", f"first_stage_model.z{i}.weight") for i in range(12)]
    tied = Pool(tuple(_candidate(f"mir:info.vae.tie:{i % 3}", k) for i, k in enumerate(keys)))
    for every in (True, False):
        names = [key for pair in keys for key in (pair if every else pair[:1])]
        layout = {f"module.{k}": (1,) for k in names}
        layout |= {f"module.{k.removeprefix('first_stage_model.')}": (1,) for k in names}
        tensors = _table(layout)
        _agrees_with_the_oracle(tied, tensors)
        index = KeyIndex(tensors.sorted_names(), tensors.name_set)
        scores = score_all(tied, tensors, index, full=not every)
        assert len(scores) == 24 and len({s.confidence for s in scores}) == 1


def _candidate(mir: str, required: tuple[str, ...]) -> Candidate:
    region = common_region(required)
    fingerprint = Fingerprint("ldm", dict.fromkeys(required, (1,)), component="vae")
    return Candidate(mir, fingerprint, region, component_prefixes(region), required[0], frozenset())


def _table(layout: Mapping[str, tuple[int, ...]]) -> TensorTable:
    """The tensors of an F16 file of ``layout``, read from its header alone."""
    entries, offset = {}, 0
    for name, shape in sorted(layout.items()):
        size = 2 * math.prod(shape)
        entries[name] = {
            "dtype": "F16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(entries, separators=(",", ":")).encode()
    return parse_header("case", raw, 8 + len(raw) + offset).tensors


# ---- mirc fingerprint ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mir"),
    [("sd15", SD1), ("flux-dev/diffusers", FLUX_DEV), ("lora-sdxl/kohya", "mir:info.lora.lora")],
)
def test_fingerprint_block_identifies_its_file(
    name: str, mir: str, files: dict[str, Path], derivation: Derivation
) -> None:
    result = run_mirc("fingerprint", str(files[name]), "--id", mir, cwd=ROOT)
    assert result.status == 0, result.err
    (block,) = yaml.safe_load(result.out)
    header = read_header(files[name])
    for key, shape in block["required"].items():
        assert key in header.tensors
        actual = header.tensors[key].shape
        assert len(shape) == len(actual)
        assert all(e is None or e == a for e, a in zip(shape, actual, strict=True))
    for key in block.get("forbidden", ()):
        assert key not in header.tensors
    assert 2 <= len(block["required"]) <= 8
    if name == "sd15":
        assert block["format"] == "ldm" and block["component"] == "unet"
        assert block["parameters"] == 859_520_964 and block["tensors"] == 686
    if name.startswith("lora"):
        assert any(None in shape for shape in block["required"].values())


def test_fingerprint_rejects_a_bad_id(files: dict[str, Path]) -> None:
    result = run_mirc("fingerprint", str(files["sd15"]), "--id", "mir:info..x", cwd=ROOT)
    assert result.status == 1
    assert "error" in result.err.splitlines()[0]


def test_large_folder_is_quiet_in_a_pipe(derivation: Derivation, tmp_path: Path) -> None:
    """Past PROGRESS_FROM files a terminal gets a progress bar; a pipe gets only the reports."""
    layout = _layout(derivation, "clip-l/hub")
    for index in range(25):
        (tmp_path / "nested").mkdir(exist_ok=True)
        _write(tmp_path / "nested" / f"{index:02}.safetensors", layout)
    (tmp_path / "nested" / "notes.txt").write_text("not a model")
    result = run_mirc("identify", str(tmp_path), cwd=ROOT)
    assert result.status == 0 and result.err == ""
    assert result.out.count("text_encoder: mir:info.vit.clip-l (transformers") == 25
