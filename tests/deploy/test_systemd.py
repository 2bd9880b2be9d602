"""The systemd units in deploy/systemd/ pass ``systemd-analyze verify`` (unknown keys, bad
values, a command that is not there), with ``ExecStart`` pointed at this virtualenv's
``wallet-service``. Skips where systemd-analyze is not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/wallet-service/venv/bin/wallet-service"


def test_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install -y systemd)")
    command = Path(sys.executable).with_name("wallet-service")
    assert command.is_file()
    units = sorted(UNITS.glob("*.service"))
    assert [u.name for u in units] == ["wallet-service-web.service",
                                       "wallet-service-worker@.service"]
    for unit in units:
        text = unit.read_text()
        assert f"ExecStart={INSTALLED} " in text
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(command)))
    # A template is verified through an instance of it, as `systemctl enable ...@1` makes.
    instance = tmp_path / "wallet-service-worker@1.service"
    instance.write_text((tmp_path / "wallet-service-worker@.service").read_text())
    checked = [tmp_path / u.name for u in units] + [instance]
    r = subprocess.run([analyze, "verify", *map(str, checked)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
