"""End to end for the access model, in headless Chromium against a live server: an
administrator creates a deployment package, a device enrols through the agent API and waits
pending, the administrator enrols it from the Devices list, builds a role assignment with a
weekly schedule, checks permissions through the page, and revokes the package — after which
the device's next API call is refused."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from agents.common import protocol as p
from tests.e2e.test_portal_e2e import OWNER, sign_in_steps

pytestmark = pytest.mark.e2e


def api(server, method, path, body=None, token=None):
    request = urllib.request.Request(server.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def connect_agent(server, token):
    """A programmatic agent: a real websocket to the relay with the device token."""
    from websockets.sync.client import connect

    return connect(server.url.replace("http://", "ws://") + "/relay/agent",
                   additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10)


def test_package_enrolment_schedule_check_and_revoke(live_server, browser):
    page, server = browser, live_server
    sign_in_steps(page, server, OWNER)

    # A deployment package whose devices arrive pending.
    page.goto(server.url + "/downloads/add")
    page.fill("input[name=name]", "Lab machines")
    page.select_option("select[name=enrolment_state]", "pending")
    page.click("button:has-text('Save')")
    key = page.locator("#enrollment-key").inner_text().strip()
    assert len(key) >= 22
    package_url = page.url

    # The agent enrols through the API and waits, pending.
    status, body = api(server, "POST", "/api/v1/agent/enroll", {
        "enrollment_key": key, "hostname": "lab-pc-01", "os": "Debian GNU/Linux 12",
        "agent_version": "0.1.0", "hardware_id": "hw-lab-pc-01"})
    assert status == 201 and body["state"] == "pending", body
    token = body["device_token"]
    assert api(server, "GET", "/api/v1/agent/me", token=token)[1]["state"] == "pending"

    # The administrator enrols it from the pending list.
    page.goto(server.url + "/devices/")
    row = page.locator("tr", has=page.locator("td[data-column=hostname]", has_text="lab-pc-01"))
    expect(row.locator("td[data-column=status]")).to_contain_text(re.compile("pending", re.I))
    row.locator("button:has-text('Enroll')").click()
    row = page.locator("tr", has=page.locator("td[data-column=hostname]", has_text="lab-pc-01"))
    expect(row.locator("td[data-column=state]")).to_contain_text(re.compile("enrolled", re.I))
    assert api(server, "GET", "/api/v1/agent/me", token=token)[1]["state"] == "enrolled"

    # The agent dials the relay: the open Devices page shows it online, with what it reported,
    # without reloading; when it goes away the page says when it was last seen.
    marker = page.evaluate("() => (window.__notReloaded = true)")
    with connect_agent(server, token) as agent:
        agent.send(p.Hello(agent_version="0.1.0", os="Debian GNU/Linux 12", hostname="lab-pc-01",
                           user="<i>lab</i>").encode())
        agent.send(p.ScreenInfo((p.Monitor(0, 0, 0, 640, 480, primary=True),)).encode())
        expect(row.locator("td[data-column=status]")).to_contain_text("Online", timeout=20_000)
        expect(row.locator("td[data-column=logged_in_user]")).to_have_text("<i>lab</i>")
    expect(row.locator("td[data-column=status]")).to_contain_text("Last seen", timeout=20_000)
    assert marker and page.evaluate("() => window.__notReloaded === true"), "the page was not reloaded"

    # Office hours, Monday to Friday, 08:00-18:00 in Copenhagen.
    page.goto(server.url + "/role-assignments/schedules/new")
    page.fill("input[name=name]", "Office hours")
    page.fill("input[name=start_date]", "2026-01-05")
    page.uncheck("input[name=all_day]")
    page.fill("input[name=start_time]", "08:00")
    page.fill("input[name=end_time]", "18:00")
    page.select_option("select[name=timezone]", "Europe/Copenhagen")
    page.select_option("select[name=recurrence]", "weekly")
    for day in range(5):
        page.check(f"input[name=weekdays][value='{day}']")
    page.click("button:has-text('Save')")
    expect(page.locator("body")).to_contain_text("Office hours")

    page.goto(server.url + "/role-assignments/new")
    page.fill("input[name=name]", "Support in office hours")
    page.select_option("select[name=role]", label="Web Support (Device)")
    page.check("input[name=everyone]")
    page.check("input[name=everything]")
    page.select_option("select[name=schedule]", label="Office hours")
    page.click("button:has-text('Save')")
    expect(page.locator("body")).to_contain_text("Support in office hours")

    # Check permissions: a Wednesday morning is covered, a Saturday is not.
    def check(date, time):
        page.goto(server.url + "/role-assignments/check")
        page.fill("input[name=user]", "user@demo.example.com")
        page.fill("input[name=device]", "lab-pc-01")
        page.fill("input[name=date]", date)
        page.fill("input[name=time]", time)
        page.select_option("select[name=timezone]", "Europe/Copenhagen")
        page.click("button:has-text('Check')")
        return page.locator("#check-result")

    result = check("2026-12-02", "10:30")
    expect(result.locator("table.check-granted")).to_contain_text("View screen")
    expect(result.locator("table.check-granted")).to_contain_text("Support in office hours")

    result = check("2026-12-05", "10:30")
    expect(result.locator("table.check-granted")).to_have_count(0)
    expect(result.locator("tr[data-applies=no]", has_text="Support in office hours")).to_contain_text(
        re.compile("schedule", re.I))

    # Revoking the package refuses the device's next call and lists it as Revoked.
    page.goto(package_url + "/revoke")
    page.fill("input[name=confirmation]", "revoke it")
    page.click("button:has-text('Revoke')")
    expect(page.locator("p.error")).to_be_visible()
    page.fill("input[name=confirmation]", "revoke")
    page.click("button:has-text('Revoke')")
    status, body = api(server, "GET", "/api/v1/agent/me", token=token)
    assert status == 401, body
    page.goto(server.url + "/devices/")
    row = page.locator("tr", has=page.locator("td[data-column=hostname]", has_text="lab-pc-01"))
    expect(row.locator("td[data-column=status]")).to_contain_text(re.compile("revoked", re.I))
    status, body = api(server, "POST", "/api/v1/agent/enroll", {
        "enrollment_key": key, "hostname": "lab-pc-01", "os": "Debian", "agent_version": "0.1.0",
        "hardware_id": "hw-lab-pc-01"})
    assert status == 403, body
