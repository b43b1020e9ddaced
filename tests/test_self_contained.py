"""The repository is self-contained: a user's clone has nothing beside it, so no file of the project may read or
name a folder outside the clone (the official reference material lives in tests/fixtures*, tests/official_keys)."""

import os

import pytest

from conftest import FAMILY_FIXTURES, FIXTURES, OFFICIAL_KEYS, TESTS_DIR

ROOT = TESTS_DIR.parent
# Written in two parts so that this file does not match itself.
OUTSIDE_FOLDERS = ("../" + "shared", "shared/" + "reference", '"shared" / ' + '"reference"')
NOT_THE_PROJECTS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", "outputs", "test-artifacts"}
TEXT_SUFFIXES = {".py", ".md", ".cfg", ".toml", ".txt", ".json", ".yaml", ".yml", ".sh", ".ini", ""}


def _project_text_files():
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(part in NOT_THE_PROJECTS or part.endswith(".egg-info") for part in parts):
            continue
        if path.is_file() and path.suffix in TEXT_SUFFIXES and path.stat().st_size < 4_000_000:
            yield path


def test_no_file_names_a_folder_outside_the_clone():
    offenders = []
    for path in _project_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(needle in line for needle in OUTSIDE_FOLDERS):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "files that read or name a folder outside the clone:\n" + "\n".join(offenders)


def test_the_scan_sees_the_project():
    """The scan above covers the package, the tests, the README and CI (a scan of nothing would pass)."""
    scanned = {str(path.relative_to(ROOT)) for path in _project_text_files()}
    for expected in ("README.md", "Makefile", ".ci/run", "src/hf_titok/__init__.py", "tests/conftest.py"):
        assert expected in scanned


@pytest.mark.parametrize("folder", [FIXTURES, FAMILY_FIXTURES, OFFICIAL_KEYS], ids=lambda p: p.name)
def test_reference_material_is_inside_the_repository(folder):
    """Unless a run names another copy on purpose, the fixtures and key listings are read from tests/."""
    if any(
        os.environ.get(name) for name in ("TITOK_FIXTURES_DIR", "TITOK_FAMILY_FIXTURES_DIR", "TITOK_OFFICIAL_KEYS_DIR")
    ):
        pytest.skip("another fixture set was named through the environment")
    assert folder.resolve().parent == TESTS_DIR.resolve()
