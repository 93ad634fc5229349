"""``mirc name``: the seed's examples, real repo ids, the rule table, classes, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.diagnostics import MircError
from compiler.lang.mir import parse_mir
from compiler.naming import classify as classify_module
from compiler.naming import derive_series, name_repo, name_repos
from compiler.naming.classify import classify_class, load_template
from compiler.naming.engine import ACTIONS, load_rules
from compiler.taxonomy import load_taxonomy
from tests.conftest import check_snapshot, run_mirc, upstream_entries

FIXTURES = Path(__file__).parent / "fixtures" / "naming"


def repo_rows() -> list[list[str]]:
    lines = (FIXTURES / "repos.tsv").read_text(encoding="utf-8").splitlines()
    return [[*line.split("\t"), ""][:4] for line in lines if not line.startswith("#")]


def derived(repo: str) -> str:
    derivation = derive_series(repo)
    compat = derivation.compat_name
    return derivation.series + ("" if compat is None else f":{compat}")


def test_seed_examples() -> None:
    hunyuan = name_repo("tencent-hunyuan/hunyuandiT-v1.2-diffusers")
    assert (hunyuan.mir.series, hunyuan.mir.compat) == ("hunyuandit-v1", "diffusers")
    assert name_repo("black-forest-labs/FLUX.1-dev").mir.series == "flux1-dev"


def test_defaults_are_info_and_unclassified() -> None:
    named = name_repo("black-forest-labs/FLUX.1-dev")
    assert str(named.mir) == "mir:info.unclassified.flux1-dev"
    assert named.classification.source == "default"


@pytest.mark.parametrize(("repo", "expected", "upstream", "why"), repo_rows())
def test_real_repo_ids(repo: str, expected: str, upstream: str, why: str) -> None:
    assert derived(repo) == expected
    upstream_series = upstream.split(".", 2)[2]
    assert (expected == upstream_series) == (why == ""), "a difference needs its reason"


def test_every_upstream_repo_id_names_a_valid_idempotent_series() -> None:
    series_of: dict[str, set[str]] = {}
    for entry in upstream_entries():
        if entry.repo:
            series_of.setdefault(entry.repo, set()).add(entry.key.split(".", 2)[2])
    agree = 0
    for repo, upstream_series in series_of.items():
        named = name_repo(repo)
        assert parse_mir(str(named.mir)) == named.mir
        assert derive_series(named.mir.series).series == named.mir.series
        agree += named.mir.series in upstream_series
    # Where the keys follow the seed's rules they agree; compiler/naming/README.md lists why the
    # rest differ. A drop here means a rule changed for the worse (or for the better: raise it).
    assert (len(series_of), agree) == (290, 132)


SIZES = {
    "org/model-7B": "model",
    "org/model-600M": "model",
    "org/model-1.3B": "model",
    "org/mixtral-8x7b": "mixtral",
    "org/model_1_3b_x": "model-x",
    "org/model-4bit": "model",
    "org/model-v1.2": "model-v1",
    "org/model-v1-2": "model-v1",
    "org/model-fp16": "model",
    "org/model-hf": "model",
    "org/model-1024px": "model:1024px",
    "org/model-t2v": "model:t2v",
    "org/model-prior-diffusers": "model:prior-diffusers",
    "model": "model",
}


@pytest.mark.parametrize(("repo", "expected"), SIZES.items())
def test_rules(repo: str, expected: str) -> None:
    assert derived(repo) == expected


def test_json_explains_which_rules_fired() -> None:
    run = run_mirc("name", "tencent-hunyuan/hunyuandiT-v1.2-diffusers", "--json")
    assert run.status == 0 and run.err == ""
    [named] = json.loads(run.out)
    assert named["id"] == "mir:info.unclassified.hunyuandit-v1:diffusers"
    assert named["arch_from"] == {
        "arch": "unclassified",
        "from": "default",
        "reason": "no --class given",
    }
    fired = [(rule["rule"], rule["after"], rule["compat"]) for rule in named["rules"]]
    assert fired == [
        ("organisation", "hunyuandiT-v1.2-diffusers", None),
        ("lowercase", "hunyuandit-v1.2-diffusers", None),
        ("breaking-diffusers", "hunyuandit-v1.2", "diffusers"),
        ("minor-version", "hunyuandit-v1", None),
    ]


def test_rule_table_is_well_formed() -> None:
    rules = load_rules()
    assert len({rule.name for rule in rules}) == len(rules)
    assert all(rule.does in ACTIONS and rule.why for rule in rules)
    assert all(rule.pattern.groups >= 1 for rule in rules if rule.does == "compat")


REPO_PART = st.from_regex(r"[A-Za-z0-9]{1,8}([._-][A-Za-z0-9]{1,8}){0,5}", fullmatch=True)
REPOS = st.builds(lambda org, name: f"{org}/{name}", REPO_PART, REPO_PART) | REPO_PART


@given(REPOS)
def test_naming_is_idempotent_and_always_a_mir_id(repo: str) -> None:
    try:
        named = name_repo(repo)
    except MircError as exc:
        assert exc.diagnostics[0].code == "name-empty"
        return
    assert parse_mir(str(named.mir)) == named.mir
    again = derive_series(named.mir.series)
    assert again.series == named.mir.series and again.compat == () and again.fired == ()


@given(st.text(max_size=40))
def test_arbitrary_repo_text_raises_only_mirc_errors(text: str) -> None:
    try:
        name_repo(text)
    except MircError as exc:
        assert exc.diagnostics and exc.diagnostics[0].span is not None


def test_a_repo_the_rules_empty_is_rejected() -> None:
    with pytest.raises(MircError) as info:
        name_repo("org/7B")
    assert info.value.diagnostics[0].code == "name-empty"
    assert "organisation, lowercase, parameter-size" in info.value.diagnostics[0].message


def test_cli_bad_repo_snapshot() -> None:
    run = run_mirc("name", "black-forest-labs/FLUX.1-dev", "../x", "")
    assert run.status == 1
    assert run.out == "mir:info.unclassified.flux1-dev  <- black-forest-labs/FLUX.1-dev\n"
    check_snapshot("cli/name-bad-repo.txt", run.err)


def test_domain_option() -> None:
    assert name_repos(["org/x"], domain="model").named[0].mir.domain == "model"
    assert name_repos(["org/x"], domain="operations").named[0].mir.domain == "ops"
    result = name_repos(["org/x"], domain="modle")
    assert result.named == [] and result.diagnostics[0].notes == ("did you mean 'model'?",)
    assert run_mirc("name", "org/x", "--domain", "modle").status == 1


def test_template_architectures_are_in_the_taxonomy() -> None:
    taxonomy = load_taxonomy()
    for section in load_template().values():
        assert all(taxonomy.canonical_arch(arch) is not None for arch in section)


PIPELINES = {
    "FluxPipeline": ("dit", "pipeline component 'transformer'"),
    "StableDiffusionXLPipeline": ("unet", "pipeline component 'unet'"),
    "StableDiffusionControlNetPipeline": ("controlnet", "pipeline component 'controlnet'"),
    "AnimateDiffPipeline": ("lora", "pipeline component 'motion_adapter'"),
    "KandinskyPriorPipeline": ("unet", "pipeline component 'prior'"),
    "WuerstchenDecoderPipeline": ("unet", "pipeline component 'decoder'"),
}


@pytest.mark.parametrize(("name", "expected"), PIPELINES.items())
def test_diffusers_pipelines_by_component(name: str, expected: tuple[str, str]) -> None:
    found = classify_class(name)
    assert (found.arch, found.reason) == expected and found.source == "diffusers"


TRANSFORMERS = {
    "LlamaModel": "art",  # artm in the template, normalised by the taxonomy
    "GPT2Config": "art",
    "T5Config": "stst",
    "Wav2Vec2Model": "aet",
    "Zamba2Model": "ssm",  # the template's mamba
    "CLIPTextModel": "vit",
    "LlavaConfig": "vit",
    "RecurrentGemmaModel": "rnn",
}


@pytest.mark.parametrize(("name", "arch"), TRANSFORMERS.items())
def test_transformers_classes_by_config_fields(name: str, arch: str) -> None:
    found = classify_class(name)
    assert found.arch == arch and found.source == "transformers"
    assert re.fullmatch(r"configuration field '\w+' \(\w+Config\)", found.reason)


def test_cli_class_sets_the_architecture() -> None:
    run = run_mirc("name", "black-forest-labs/FLUX.1-dev", "--class", "FluxPipeline")
    assert (run.status, run.out) == (0, "mir:info.dit.flux1-dev  <- black-forest-labs/FLUX.1-dev\n")
    run = run_mirc("name", "meta-llama/Llama-2-7b-hf", "--class", "LlamaModel", "--json")
    [named] = json.loads(run.out)
    assert named["id"] == "mir:info.art.llama-2" and named["arch_from"]["from"] == "transformers"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("FluxPipelin", "class-unknown"),
        ("os.system", "class-name"),
        ("__import__", "class-name"),
        ("UNet2DConditionModel", "class-kind"),
        ("AutoTokenizer", "class-kind"),
    ],
)
def test_bad_classes_are_diagnosed(name: str, code: str) -> None:
    with pytest.raises(MircError) as info:
        classify_class(name)
    assert info.value.diagnostics[0].code == code


def test_a_class_whose_backend_is_missing_is_diagnosed(monkeypatch: pytest.MonkeyPatch) -> None:
    class DummyObject(type):
        """Named like the libraries' stand-in for a class whose backend is not installed."""

    stand_in = DummyObject("FakePipeline", (), {"_backends": ["torch", "sentencepiece"]})
    monkeypatch.setattr(classify_module, "_names", lambda library: frozenset({"FakePipeline"}))
    monkeypatch.setattr(
        classify_module, "_module", lambda library: SimpleNamespace(FakePipeline=stand_in)
    )
    with pytest.raises(MircError) as info:
        classify_class("FakePipeline")
    assert info.value.diagnostics[0].code == "class-unavailable"
    assert "needs torch, sentencepiece" in info.value.diagnostics[0].message


def test_cli_unknown_class_snapshot() -> None:
    run = run_mirc("name", "black-forest-labs/FLUX.1-dev", "--class", "FluxPipelin")
    assert run.status == 1 and run.out == ""
    check_snapshot("cli/name-unknown-class.txt", run.err)
