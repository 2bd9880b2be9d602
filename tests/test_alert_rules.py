"""The example Prometheus alert file (deploy/prometheus/): valid rules (``promtool check
rules`` when it is installed, else parsed and checked here), over metrics the service
actually serves."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).parent.parent / "deploy" / "prometheus" / "wallet-service-alerts.yml"
TOKEN = "scrape-token-0123456789abcdef"


def test_the_rules_pass_promtool_when_it_is_installed():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed; test_the_rules_are_well_formed checks them")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_are_well_formed():
    document = yaml.safe_load(RULES.read_text())
    [group] = document["groups"]
    assert group["name"] and set(document) == {"groups"}
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    assert len(alerts) == len(group["rules"])  # names are unique
    assert {"WalletCertificateExpiringSoon", "WalletPushQueueGrowing",
            "WalletApnsForbidden"} <= set(alerts)
    for name, rule in alerts.items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"], name
        assert "for" not in rule or re.fullmatch(r"\d+[smhd]", rule["for"]), name
        expr = rule["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
    assert "< 30" in alerts["WalletCertificateExpiringSoon"]["expr"]
    assert 'status="403"' in alerts["WalletApnsForbidden"]["expr"]


def test_the_rules_use_metrics_the_service_serves(app, client):
    state = app.extensions["wallet"]
    before = state.settings
    state.settings = dataclasses.replace(before, metrics_token=TOKEN, google_issuer_id="1",
                                         google_credentials="on")
    try:
        page = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        state.settings = before
    served = set()
    for family in text_string_to_metric_families(page.get_data(as_text=True)):
        served.add(family.name)
        if family.type == "counter":
            served.add(family.name + "_total")
    used = set(re.findall(r"\bwallet_[a-z_]+\b", RULES.read_text()))
    used.discard("wallet_service")
    assert used and used <= served, used - served
