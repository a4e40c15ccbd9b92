"""Project-level promises: every make target documented, every environment variable in the docs."""

import re
import subprocess
from pathlib import Path

from medchain import settings

ROOT = Path(__file__).resolve().parents[2]


def test_make_help_lists_every_phony_target():
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M)
    assert phony is not None
    targets = phony.group(1).split()
    shown = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert set(targets) <= listed, f"targets without a help line: {sorted(set(targets) - listed)}"


def test_configuration_doc_lists_every_environment_variable():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    rows = re.findall(r"^\| `(MEDCHAIN_[A-Z_]+)` \| (.*?) \| (.*?) \|$", doc, re.M)
    assert [(name, default, meaning) for name, default, meaning in rows] == [
        (s.name, s.default, s.meaning) for s in settings.ALL
    ]


def test_no_undocumented_environment_variable_is_read():
    """Every MEDCHAIN_* variable the package, the tests, the Makefile or CI read is a documented
    setting (names in quotes, `$NAME`/`${NAME` in shell, `process.env.NAME` in JavaScript)."""
    pattern = re.compile(r"""["'$]\{?(MEDCHAIN_[A-Z_]+)|process\.env\.(MEDCHAIN_[A-Z_]+)""")
    files = [*ROOT.glob("medchain/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("tests/**/*.js")]
    files += [ROOT / "Makefile", ROOT / ".ci" / "run", *ROOT.glob("tools/setup/*.sh")]
    used = set()
    for path in files:
        for match in pattern.finditer(path.read_text()):
            used.add(match.group(1) or match.group(2))
    assert used, "the pattern found nothing: it is broken"
    documented = {s.name for s in settings.ALL}
    assert used <= documented, sorted(used - documented)
