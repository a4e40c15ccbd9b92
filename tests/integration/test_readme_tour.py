"""The README's five-minute tour, run exactly as written, checked step by step.

The block between ``<!-- tour -->`` and ``<!-- /tour -->`` runs in one bash process (so its shell
variables and background job behave as for a reader), from the repository's root, against a chain
of its own (``MEDCHAIN_CHAIN_PORT``) and a private ``MEDCHAIN_HOME``. After each line the script
prints a marker with the line's exit status and the time, so that every step's output is checked
on its own. The only lines added to the reader's block are those markers."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from medchain.localchain import free_port

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@step"


def tour_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- tour -->\s*```bash\n(.*?)```\s*<!-- /tour -->", readme, re.S)
    assert block is not None, "README.md lost its tour block"
    return [
        line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def run_tour(lines: list[str], env: dict[str, str], cwd: Path) -> list[tuple[str, int, float, str]]:
    # If a step fails, the background gateway and the chain must not outlive the test.
    cleanup = "trap 'kill $(jobs -p) 2>/dev/null; .venv/bin/medchain chain down >/dev/null 2>&1' EXIT"
    script = ["set -u", cleanup, f'echo "{MARK} start 0 $(date +%s.%N)"']
    for i, line in enumerate(lines):
        script += [line, f'echo "{MARK} {i} $? $(date +%s.%N)"']
    script.append(f'echo "{MARK} vars PLAN=${{PLAN:-}} RECORD=${{RECORD:-}} CLAIM=${{CLAIM:-}}"')
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    steps, current, started = [], [], 0.0
    variables = ""
    for out_line in (done.stdout + "\n" + done.stderr).splitlines():
        if out_line.startswith(f"{MARK} vars "):
            variables = out_line
            continue
        if out_line.startswith(MARK):
            _, index, status, stamp = out_line.split()
            if index == "start":
                started = float(stamp)
            else:
                steps.append((lines[int(index)], int(status), float(stamp) - started, "\n".join(current)))
                started = float(stamp)
            current = []
        else:
            current.append(out_line)
    steps.append(("vars", 0, 0.0, variables))
    return steps


# What each step must show (a substring of its output), by a piece of its command.
EXPECT = {
    "chain up": "local chain started",
    "deploy --dev-consortium": "hospital-a",
    "account new alice": "alice",
    "chain fund alice": "100",
    "plan fund": "10000.00",
    "sign-enrolment": "enrol.json",
    "claim enrol": "coverage years from",
    "grant hospital-a": "read,append",
    "sign-grant hospital-b": "consent-b.json",
    "submit-grant": "Signed consent submitted",
    "grant insurer": "category:Encounter",
    "ehr read": '"resourceType": "Encounter"',
    "claim status": "paid",
    "chain down": "local chain stopped",
}


def test_readme_tour_runs_as_written_and_pays_the_claim(tmp_path):
    lines = tour_lines()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "MEDCHAIN_HOME": str(home),
        "MEDCHAIN_CHAIN_PORT": str(free_port()),
        "MEDCHAIN_GATEWAY": f"http://127.0.0.1:{free_port()}",
        "MEDCHAIN_PASSWORD": "tour password",
        "PATH": f"{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}",
    }
    for name in ("MEDCHAIN_RPC", "MEDCHAIN_MANIFEST", "MEDCHAIN_PRIVATE_KEY", "VIRTUAL_ENV"):
        env.pop(name, None)
    # A working folder that looks like the repository's root (the tour's relative paths work) but
    # keeps the files the tour writes (enrol.json, consent-b.json, gateway.log) out of the checkout.
    work = tmp_path / "checkout"
    work.mkdir()
    for name in (".venv", "docs", "build", "node_modules"):
        (work / name).symlink_to(ROOT / name)
    began = time.monotonic()
    steps = run_tour(lines, env, work)
    wall = time.monotonic() - began
    for command, status, _seconds, output in steps[:-1]:
        assert status == 0, f"`{command}` failed:\n{output}"
        assert "Traceback" not in output, f"`{command}`:\n{output}"
        for piece, wanted in EXPECT.items():
            if piece in command:
                assert wanted in output, f"`{command}` did not show {wanted!r}:\n{output}"
    assert len(steps) - 1 == len(lines), "the tour stopped early"
    variables = dict(v.split("=", 1) for v in steps[-1][3].split()[2:])
    assert variables["PLAN"] == "1"
    assert re.fullmatch(r"0x[0-9a-f]{64}", variables["RECORD"])
    assert re.fullmatch(r"0x[0-9a-f]{64}", variables["CLAIM"])
    # The read is the record anchored: its content is the example file's.
    read = next(out for cmd, _s, _t, out in steps if "ehr read" in cmd)
    assert "J18.9" in read
    # The encrypted store holds ciphertext only: the example's diagnosis text is not in it.
    stored = b"".join(p.read_bytes() for p in (home / "store").rglob("*") if p.is_file())
    assert stored
    assert b"Pneumonia" not in stored
    timings = ", ".join(f"{cmd.split('#')[0].strip()[:40]}: {secs:.1f}s" for cmd, _s, secs, _o in steps[:-1])
    print(f"\ntour: {len(lines)} lines in {wall:.1f} s ({timings})")
