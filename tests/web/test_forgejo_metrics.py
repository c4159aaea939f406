"""Metrics of real ticks on the fake Forgejo: forge requests by endpoint and status."""

from __future__ import annotations

from opsvault.dispatcher.tick import tick
from opsvault.web.service import ServiceSurface
from tests.dispatcher.harness import HOOK, NOOP, Harness
from tests.web.support import samples, value


def test_forge_requests_pushes_and_decisions_are_counted(vault: Harness) -> None:
    app = vault.app()
    surface = ServiceSurface(app)
    surface.instrument()
    observed_tick = surface.wrap(tick)
    vault.propose("noop-smoke-1", NOOP.format(msg="hi"))
    vault.propose("deploy-1", HOOK.format(n=1))
    vault.wait_for_checks()
    report = observed_tick(app, vault.at(vault.now[0] - vault.clock))
    assert report.ok, report.errors
    text = surface.metrics.render().decode()
    found = samples(text)
    requests = {
        dict(labels)["endpoint"]: count
        for (name, labels), count in found.items()
        if name == "opsvault_forge_requests_total" and dict(labels)["status"] == "200"
    }
    assert requests.get("GET repo/pulls", 0) >= 1
    assert requests.get("POST repo/pulls/{n}/merge") == 1
    assert (
        sum(
            count
            for (name, _), count in found.items()
            if name == "opsvault_forge_requests_total"
        )
        == report.forge_requests
    )
    assert value(text, "opsvault_forge_requests_last_tick") == report.forge_requests
    assert value(text, "opsvault_git_pushes_total", result="ok") == report.commits
    assert value(text, "opsvault_decisions_total", event="merged", tier="low") == 1
    assert value(text, "opsvault_decisions_total", event="notified", tier="medium") == 1
    assert value(text, "opsvault_outcomes_total", outcome="succeeded") == 1
    assert value(text, "opsvault_actions_waiting", tier="medium", stage="approval") == 1
    page = surface.observed()
    assert [line.forge_requests for line in page.ticks] == [report.forge_requests]
    assert [f.id for f in page.status.recent] == ["noop-smoke-1"]
