"""The addon's headless test runner in a real Godot 4.2+, where a `godot` binary exists.

No Godot can be installed on this project's development and CI machines, so this is skipped
there and the GDScript is checked by gdtoolkit and executed by gdsim instead (see
test_godot_codec.py, test_godot_zmtp.py, test_godot_client.py). Set GODOT_BIN or put godot4/godot
on PATH to run it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GODOT_PROJECT = ROOT / "godot_addon"
VECTORS = ROOT / "docs" / "protocol" / "vectors"
GODOT_BIN = os.environ.get("GODOT_BIN") or shutil.which("godot4") or shutil.which("godot")

pytestmark = pytest.mark.skipif(
    GODOT_BIN is None,
    reason="no Godot 4 binary (GODOT_BIN, godot4 or godot on PATH): the GDScript was only parsed by gdtoolkit "
           "and executed by gdsim, not run in Godot",
)


def _godot_version() -> tuple[int, int]:
    out = subprocess.run([GODOT_BIN, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.match(r"(\d+)\.(\d+)", out.strip())
    assert m, f"cannot read the Godot version from {out!r}"
    return int(m.group(1)), int(m.group(2))


def test_headless_runner_passes_offline_and_live(tmp_path):
    if _godot_version() < (4, 2):
        pytest.skip(f"{GODOT_BIN} is Godot {_godot_version()}; the addon needs 4.2+")
    from bridge.host.server import run_host_in_thread

    with run_host_in_thread("sandbox", record_anywhere=True) as host:  # it records into --record-dir
        result = subprocess.run(
            [GODOT_BIN, "--headless", "--path", str(GODOT_PROJECT), "-s", "addons/world_bridge/tests/run_tests.gd",
             "--", f"--vectors={VECTORS}", f"--host={host.address}", f"--record-dir={tmp_path}"],
            capture_output=True, text=True, timeout=240)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and "RESULT: OK" in log, log
    assert re.search(r"offline: \d+ checks passed, 1 vector skipped", log), log
    assert "live: SANDBOX GAME (test backend" in log, log
