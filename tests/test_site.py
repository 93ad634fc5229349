"""``mirc site``: the pages planned from a small registry, the built site (MkDocs --strict),
offline-ness, links, downloads, determinism, failures, ``--serve``, and the whole registry."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from compiler.cli import build_parser
from compiler.interop.exporter import database_text, export_database
from compiler.registry import check_registry
from compiler.resources import PACKAGE_DIR, data_dir
from compiler.site import SiteResult, build_site
from compiler.site.reference import code_spans, header_blocks
from compiler.write import read_tree
from tests.conftest import ROOT, run_mirc
from tests.site_support import FLUX, read_page, site_registry

GRAMMARS = sorted((PACKAGE_DIR / "grammars").glob("*.lark"))


def build(spec: Path, out: Path) -> SiteResult:
    result = build_site(spec, out, build_parser())
    assert result.ok, [d.message for d in result.diagnostics]
    return result


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small registry's site, built once for this module: the HTML folder."""
    root = tmp_path_factory.mktemp("small")
    build(site_registry(root), root / "out")
    return root / "out"


def text(out: Path, page: str) -> str:
    return read_page(out / page).text


def test_every_kind_of_page_is_built(small: Path) -> None:
    pages = {p.relative_to(small).as_posix() for p in small.rglob("*.html")}
    expected = {
        "index.html",
        "registry/index.html",
        "models/dit/flux-1-dev.html",
        "models/vae/flux-vae.html",
        "ops/index.html",
        "ops/precision/bfloat.html",
        "ops/scheduler/flowmatcheuler.html",
        "targets/index.html",
        "targets/rtx-4090.html",
        "targets/h100x16.html",
        "taxonomy.html",
        "languages/index.html",
        "naming.html",
        "cli.html",
        "downloads/index.html",
    }
    assert expected <= pages
    assert {f"languages/{g.stem}.html" for g in GRAMMARS} <= pages


def test_series_page_shows_memory_fit_with_reasons(small: Path) -> None:
    page = text(small, "models/dit/flux-1-dev.html")
    assert page.startswith("FLUX.1 [dev]") or "FLUX.1 [dev]" in page
    for label in ("fits", "needs offload", "does not fit"):
        assert label in page
    assert "even the largest model (22.2 GiB) does not fit: stream it layer by layer" in page
    assert "one layer and its activations exceed 0.9 GiB" in page
    assert "33.4 GiB fits in 72.0 GiB usable" in page
    assert "Flux Mini <3B>" in page  # spec text is shown as text, never as markup


def test_series_page_loader_and_training_commands(small: Path) -> None:
    page = text(small, "models/dit/flux-1-dev.html")
    assert "from generated.loaders.dit.flux_1_dev import load" in page
    assert 'pipe = load(variant="base", target="h100x8")' in page
    assert (
        "python generated/training/dit/flux_1_dev/rtx_4090.py --data DATA_DIR --output OUTPUT_DIR"
        in page
    )
    assert (
        "torchrun --standalone --nproc_per_node=8 \\ generated/training/dit/flux_1_dev/h100x8.py"
        in page
    )
    assert "torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK" in page


def test_series_page_links_components_and_crosswalk(small: Path) -> None:
    page = read_page(small / "models/dit/flux-1-dev.html")
    hrefs = {url for _, _, url in page.urls}
    assert "../aet/clip-l.html#variant-base" in hrefs
    assert "../../ops/precision/bfloat.html#variant-b16" in hrefs
    assert "urn:air:flux1:checkpoint:SOURCE:ID" in page.text
    assert "flux-1-dev" in page.text and "FluxPipeline" in page.text
    assert "4610115bb0c89560703c892c59ac2742fa821e60ef5871b33493ba544683abd7" in page.text
    assert "single_transformer_blocks.37.proj_out.weight 3072×15360" in page.text
    used_by = text(small, "models/aet/clip-l.html")
    assert "Used by" in used_by and "mir:info.dit.flux-1-dev text_encoder" in used_by.replace(
        "components.", ""
    )


def test_registry_table_lists_every_series_with_filters(small: Path) -> None:
    source = (small.parent / "out-src/docs/registry/index.md").read_text()
    rows = re.findall(r'<tr data-domain="(\w+)" data-arch="([\w-]+)"', source)
    assert sorted(rows) == sorted(
        [
            ("info", "aet"),
            ("info", "dit"),
            ("info", "stst"),
            ("info", "unet"),
            ("info", "vae"),
            ("ops", "precision"),
            ("ops", "scheduler"),
        ]
    )
    page = read_page(small / "registry/index.html")
    assert "../models/dit/flux-1-dev.html" in {url for _, _, url in page.urls}
    assert ("script", "src", "../assets/registry-table.js") in page.urls


def test_target_pages_say_what_runs_there(small: Path) -> None:
    page = text(small, "targets/rtx-4090.html")
    assert "needs offload 1 variant" in page and "mir:info.dit.flux-1-dev" in page
    index = text(small, "targets/index.html")
    assert "2 nodes of 8x H100 80GB" in index and "Edge GPU 1GB" in index


def test_language_pages_show_the_grammar_files(small: Path) -> None:
    for grammar in GRAMMARS:
        page = text(small, f"languages/{grammar.stem}.html")
        shown = " ".join(grammar.read_text(encoding="utf-8").split())
        assert shown in page, grammar.name


def test_cli_reference_covers_every_command_and_option(small: Path) -> None:
    page = text(small, "cli.html")
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if a.dest == "command"]
    assert subparsers.choices  # type: ignore[truthy-function]
    for name, sub in subparsers.choices.items():  # type: ignore[union-attr]
        assert f"mirc {name}" in page
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert option in page, (name, option)
            if action.help and "%(" not in action.help:
                assert " ".join(action.help.split()) in page, (name, action.dest)


def test_naming_page_lists_the_rules_and_the_seed_examples(small: Path) -> None:
    page = text(small, "naming.html")
    assert "tencent-hunyuan/hunyuandiT-v1.2-diffusers hunyuandit-v1 diffusers" in page
    assert "black-forest-labs/FLUX.1-dev flux1-dev" in page
    rules = re.findall(r"^  - name: (\S+)$", (PACKAGE_DIR / "naming/rules.yaml").read_text(), re.M)
    table = page[page.index("The rules") :]
    positions = [table.index(f" {n} {rule} ") for n, rule in enumerate(rules, start=1)]
    assert positions == sorted(positions) and len(rules) > 10


def test_downloads_are_the_schemas_and_the_export(small: Path) -> None:
    for schema in sorted((ROOT / "spec/schema").glob("*.schema.json")):
        assert (small / "downloads/schema" / schema.name).read_bytes() == schema.read_bytes()
    checked = check_registry(small.parent / "spec")
    assert checked.linked is not None
    expected = database_text(export_database(checked.linked))
    assert (small / "downloads/mir.json").read_text() == expected
    assert "mir.json" in text(small, "downloads/index.html")


def test_site_needs_no_network(small: Path) -> None:
    """No page or stylesheet names anything outside the site to load (fonts, scripts, CSS)."""
    for path in small.rglob("*.html"):
        for tag, attribute, url in read_page(path).urls:
            if tag in ("script", "link", "img", "iframe", "source") and attribute in (
                "src",
                "href",
            ):
                if tag == "link" and url.startswith("http") and "canonical" in url:
                    continue
                assert not re.match(r"(https?:)?//", url), (path, tag, url)
    for path in small.rglob("*.css"):
        css = path.read_text(encoding="utf-8")
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", css), path
    for path in [*small.rglob("*.html"), *small.rglob("*.js"), *small.rglob("*.css")]:
        assert "fonts.googleapis" not in path.read_text(encoding="utf-8"), path


def test_every_local_link_and_anchor_resolves(small: Path) -> None:
    # 404.html names its assets from the server root, wherever it is served from.
    pages = {p: read_page(p) for p in small.rglob("*.html") if p.name != "404.html"}
    for path, page in pages.items():
        for _tag, _attribute, url in page.urls:
            if re.match(r"[a-z]+:|//|#arch=|#domain=", url) or url.startswith("data:"):
                continue
            target, _, anchor = url.partition("#")
            resolved = (path.parent / target).resolve() if target else path
            assert resolved.exists(), (path, url)
            if anchor and resolved.suffix == ".html" and "=" not in anchor:
                assert anchor in pages[resolved].ids, (path, url)


def test_sources_are_deterministic(tmp_path: Path) -> None:
    """Two builds of the sources (different hash seeds, processes) give the same bytes."""
    spec = site_registry(tmp_path)
    trees = []
    for seed in ("1", "2"):
        probe = (
            "import sys; from pathlib import Path;"
            "from compiler.cli import build_parser; from compiler.registry import check_registry;"
            "from compiler.resources import data_dir; from compiler.site.model import site_input;"
            "from compiler.site.pages import plan_site;"
            "from compiler.site.project import project_files;"
            "from compiler.write import write_tree;"
            "spec = Path(sys.argv[1]); linked = check_registry(spec).linked;"
            "plan = plan_site(site_input(linked, spec), build_parser());"
            "write_tree(Path(sys.argv[2]), project_files(plan, data_dir('site')))"
        )
        out = tmp_path / f"src{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-c", probe, spec, out], check=True, env=env)
        trees.append(read_tree(out))
    assert trees[0] == trees[1] and len(trees[0]) > 20


def test_registry_without_targets_builds(tmp_path: Path) -> None:
    spec = site_registry(tmp_path, targets=False)
    build(spec, tmp_path / "out")
    assert "No target GPUs are defined" in text(tmp_path / "out", "models/dit/flux-1-dev.html")
    assert "No targets are defined" in text(tmp_path / "out", "targets/index.html")


def test_rejected_registry_writes_nothing(tmp_path: Path) -> None:
    spec = site_registry(tmp_path)
    (spec / "models/dit/flux-1-dev.yaml").write_text(
        FLUX.replace("mir:info.aet.clip-l", "mir:info.aet.clip-x")
    )
    run = run_mirc("site", "--spec", str(spec), "--out", str(tmp_path / "out"))
    assert run.status == 1 and "unresolved MIR id mir:info.aet.clip-x" in run.err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-src").exists()


def test_strict_mkdocs_failure_keeps_the_old_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = site_registry(tmp_path, targets=False)
    out = tmp_path / "out"
    build(spec, out)
    before = read_tree(out)
    broken = tmp_path / "site"
    shutil.copytree(data_dir("site"), broken)
    (broken / "docs/broken.md").write_text("# Broken\n\nSee [nowhere](nowhere.md).\n")
    monkeypatch.setattr("compiler.site.data_dir", lambda name: broken)
    result = build_site(spec, out, build_parser())
    assert not result.ok
    [diagnostic] = result.diagnostics
    assert diagnostic.code == "site-mkdocs" and "nowhere.md" in diagnostic.message
    assert read_tree(out) == before


def test_json_summary(tmp_path: Path) -> None:
    spec = site_registry(tmp_path, targets=False)
    run = run_mirc("site", "--spec", str(spec), "--out", str(tmp_path / "out"), "--json")
    assert run.status == 0, run.err
    summary = json.loads(run.out)
    assert summary["ok"] is True and summary["pages"] > 15


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_on_localhost(tmp_path: Path) -> None:
    spec = site_registry(tmp_path, targets=False)
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "compiler", "site", "--serve", "--address", address]
    command += ["--spec", str(spec), "--out", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C for the server and mkdocs under it, not for pytest
    )
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://{address}/index.html", timeout=2) as reply:
                    body = reply.read().decode("utf-8")
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.3)
        assert "The MIR registry" in body
    finally:
        os.killpg(server.pid, signal.SIGINT)
        assert server.wait(timeout=20) in (0, 130)
        if server.stderr is not None:
            server.stderr.close()


def test_whole_registry_builds_strict_in_time(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = build(ROOT / "spec", tmp_path / "out")
    seconds = time.perf_counter() - started
    models = len(list((ROOT / "spec/models").rglob("*.yaml")))
    assert len(list((tmp_path / "out/models").rglob("*.html"))) == models
    assert result.pages > models and seconds < 60, seconds


def test_pages_workflow_publishes_what_mirc_site_builds() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/pages.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["build"]["steps"]
    [command] = [s["run"] for s in steps if "mirc site" in s.get("run", "")]
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert command == f"mirc site --out {upload['with']['path']}"
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    deploy = workflow["jobs"]["deploy"]["steps"]
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy)


def test_grammar_header_becomes_prose_and_examples() -> None:
    text = "// A `x` language.\n// more words\n//\n//   x 1\n//   x 2\n// end\nstart: X\n"
    assert header_blocks(text) == [
        {
            "kind": "text",
            "segments": [("A ", False), ("x", True), (" language. more words", False)],
        },
        {"kind": "code", "text": "x 1\nx 2"},
        {"kind": "text", "segments": [("end", False)]},
    ]
    assert code_spans("odd ` tick") == [("odd ` tick", False)]
