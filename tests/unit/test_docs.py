"""The documentation that is derived from code stays true to it."""

from __future__ import annotations

import re

from coresdk import reasons
from coresdk.config.reference import render, undocumented
from coresdk.doctor.report import CHECKS
from tests.support.processes import ROOT

DOCS = ROOT / "docs"


def test_the_configuration_reference_is_generated_from_the_code() -> None:
    assert undocumented() == [], "add a line to coresdk/config/descriptions.py"
    current = (DOCS / "config-reference.md").read_text()
    assert current == render(), "run: .venv/bin/python -m coresdk.config.reference > docs/config-reference.md"
    assert "**undocumented**" not in current


def test_every_doctor_check_is_in_the_operator_checklist() -> None:
    guide = (DOCS / "operator-guide.md").read_text()
    missing = [c.id for c in CHECKS if f"`{c.id}`" not in guide]
    assert missing == []


def test_every_error_reason_is_in_the_developer_guide() -> None:
    guide = (DOCS / "developer-guide.md").read_text()
    names = [v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)]
    assert names and [n for n in names if f"`{n}`" not in guide] == []


def test_docs_link_only_to_files_that_exist() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
