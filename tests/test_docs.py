"""The README and the documentation site under ``docs/``: the getting-started page shows only
commands the suite runs, the README's links land on pages of the site, and the generated
references cover the whole command line, HTTP API and ``liara.toml``. (``make lint`` builds the
site with ``mkdocs build --strict``: a broken link or anchor, or a page left out of the
navigation, fails it.)
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
GETTING_STARTED = DOCS / "getting-started.md"
#: The pages the build writes from the code (scripts/docs_reference.py): never files in docs/.
GENERATED = {"reference/cli.md", "reference/http-api.md", "reference/configuration.md", "benchmarks.md", "changelog.md"}

#: Each command of the getting-started page, the test that runs it, and what that test's module
#: says to show it runs that very command.
RUN_BY = {
    "python scripts/setup_temporal.py start": (
        "tests/temporal/test_setup_temporal.py",
        "test_start_status_stop_lifecycle",
        "server_dir.start()",
    ),
    "docker-compose up -d temporal temporal-postgresql": (
        "tests/fleet/test_deployment.py",
        "test_temporal_starts_with_its_database_and_the_web_ui",
        "docker-compose up -d temporal temporal-postgresql",
    ),
    "curl http://localhost:8233/api/v1/namespaces/default": (
        "tests/temporal/test_setup_temporal.py",
        "test_start_status_stop_lifecycle",
        "/api/v1/namespaces/default",
    ),
    "python cognition/liara/worker.py": (
        "tests/temporal/test_workers.py",
        "test_worker_prints_the_spec_lines_in_order",
        '"cognition/liara/worker.py"',
    ),
    "python src/app/temporal/worker.py": (
        "tests/temporal/test_workers.py",
        "test_worker_prints_the_spec_lines_in_order",
        '"src/app/temporal/worker.py"',
    ),
    "python cognition/liara/cli.py trigger target-alpha recon secure extract cleanup": (
        "tests/temporal/test_liara_workflows.py",
        "test_cli_trigger_then_wait_runs_the_spec_crisis_on_a_worker_process",
        '"trigger", "target-alpha", "recon", "secure", "extract", "cleanup"',
    ),
    "python cognition/liara/cli.py status <workflow-id>": (
        "tests/liara/test_cli.py",
        "test_status_of_a_finished_crisis_shows_completed_and_each_phase",
        '"status", workflow_id',
    ),
    "python cognition/liara/cli.py wait <workflow-id>": (
        "tests/temporal/test_liara_workflows.py",
        "test_cli_trigger_then_wait_runs_the_spec_crisis_on_a_worker_process",
        '"wait", workflow_id',
    ),
    "python examples/temporal/liara_crisis_example.py": (
        "tests/liara/test_example.py",
        "test_example_runs_a_crisis_on_the_worker",
        "examples/temporal/liara_crisis_example.py",
    ),
    'pytest tests/temporal/test_liara_workflows.py -k "not integration"': (
        "tests/test_docs.py",
        "test_the_pytest_commands_of_getting_started_select_tests",
        "def test_the_pytest_commands_of_getting_started_select_tests",
    ),
    "pytest tests/temporal/test_liara_workflows.py -m integration": (
        "tests/test_docs.py",
        "test_the_pytest_commands_of_getting_started_select_tests",
        "def test_the_pytest_commands_of_getting_started_select_tests",
    ),
}


def fenced(text: str, language: str) -> list[str]:
    """The bodies of the ``language`` code blocks of a Markdown text."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def commands(text: str) -> list[str]:
    """Each command of the text's bash blocks (comments and blank lines left out)."""
    found = []
    for block in fenced(text, "bash"):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def test_every_command_of_getting_started_is_one_the_suite_runs():
    shown = commands(GETTING_STARTED.read_text())

    assert shown, "the getting-started page shows no command"
    assert set(shown) == set(RUN_BY), "a command shown without a test that runs it, or a test for one no longer shown"
    for command, (path, test_name, marker) in RUN_BY.items():
        source = (REPO_ROOT / path).read_text()
        tests = {
            node.name
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert test_name in tests, f"{command!r}: {path} has no {test_name}"
        assert marker in source, f"{command!r}: {path} does not show {marker!r}"


def test_the_getting_started_python_is_the_quick_reference_snippet_the_suite_runs():
    from tests.liara.test_agency import SPEC_SNIPPET

    assert fenced(GETTING_STARTED.read_text(), "python") == [SPEC_SNIPPET]


def test_the_pytest_commands_of_getting_started_select_tests(tmp_path):
    for command in commands(GETTING_STARTED.read_text()):
        if not command.startswith("pytest "):
            continue
        arguments = shlex.split(command)[1:]
        collected = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *arguments],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert collected.returncode == 0, command + "\n" + collected.stdout + collected.stderr
        assert re.search(r"^\d+(/\d+)? tests? (collected|selected)", collected.stdout, re.MULTILINE), collected.stdout


def nav_pages() -> set[str]:
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())

    def walk(entries) -> set[str]:
        pages: set[str] = set()
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            pages |= walk(value) if isinstance(value, list) else {value}
        return pages

    return walk(config["nav"])


def test_every_page_is_in_the_navigation_and_generated_ones_are_not_committed():
    written = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}

    assert not written & GENERATED, "a generated page is committed: the build writes it from the code"
    assert nav_pages() == written | GENERATED


def slug(heading: str) -> str:
    """The anchor of a heading, as MkDocs (its ``toc`` extension) and GitHub make it."""
    text = re.sub(r"[`*]", "", heading)
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    return {slug(heading) for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def readme_links() -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", README.read_text())


def test_the_readme_links_land_on_pages_of_the_site():
    pages = nav_pages()
    local = [link for link in readme_links() if not re.match(r"^[a-z]+:", link)]

    assert local
    for link in local:
        path, _, anchor = link.partition("#")
        target = REPO_ROOT / path
        assert target.exists(), f"README links to {link}, which does not exist"
        if path.startswith("docs/") and path.endswith(".md"):
            assert path.removeprefix("docs/") in pages, f"README links to {link}, which is not in the site"
        if anchor and path.endswith(".md"):
            assert anchor in anchors(target), f"README links to {link}: {path} has no such heading"


@pytest.mark.parametrize(
    ("question", "page", "answers"),
    [
        ("how do I point this at my Temporal cluster", "docs/guides/deploy.md", ["TEMPORAL_ADDRESS", "--address"]),
        ("which executor types exist and how do I configure one", "docs/guides/executors.md", ["[executors."]),
        ("what may an operator token do", "docs/guides/security.md", ["`operator`"]),
    ],
)
def test_each_newcomer_question_is_one_click_from_the_readme(question, page, answers):
    assert any(link.partition("#")[0] == page for link in readme_links()), f"{question}: README does not link {page}"
    text = (REPO_ROOT / page).read_text()
    for answer in answers:
        assert answer in text, f"{question}: {page} does not say {answer!r}"


def test_the_executors_guide_names_every_built_in_type():
    from app.temporal.agents.plugins import BUILTIN_TYPES

    text = (DOCS / "guides/executors.md").read_text()
    for type_name in BUILTIN_TYPES:
        assert f"`{type_name}`" in text, type_name


def test_the_readme_stays_short():
    assert len(README.read_text().splitlines()) <= 150


def test_the_references_are_generated_from_the_whole_code():
    import typer

    from app.temporal.agents.plugins import BUILTIN_TYPES
    from app.temporal.config import LiaraConfig
    from cognition.liara.cli import app
    from scripts.docs_reference import openapi_document, pages

    generated = pages()

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="liara")
    for name in root.list_commands(context):
        assert f"## `liara {name}`" in generated["reference/cli.md"], name
    for path in openapi_document()["paths"]:
        assert f"`{path}`" in generated["reference/http-api.md"], path
    for section in LiaraConfig.model_fields:
        assert f"`{section}`" in generated["reference/configuration.md"], section
    for type_name in BUILTIN_TYPES:
        assert f'`type = "{type_name}"`' in generated["reference/configuration.md"], type_name
    assert generated["benchmarks.md"].startswith("# Benchmarks")
    assert "](docs/" not in generated["benchmarks.md"]
