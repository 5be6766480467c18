"""End to end, as a person would do it: headless Debian Chromium (Playwright) against a live
``tessera run`` server whose mail goes to a real SMTP listener (aiosmtpd).

Covers: sign-in with an emailed code (read from the SMTP listener), a recovery code, a users
listing filtered by two chips, sorted and paged, and an invitation completed through "set up
your account"."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

OWNER = "owner@demo.example.com"
DEMO_PASSWORD = "Demo-Pass-2024"


def sign_in_steps(page, server, username, password=DEMO_PASSWORD):
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.click("button[type=submit]")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def sign_out(page):
    page.click(".profile-menu summary")
    page.click("text=Sign out")
    expect(page.locator("input[name=username]")).to_be_visible()


def emailed_code(server, to, seen=0):
    """The 6-digit code of the newest sign-in mail to ``to`` (after ``seen`` earlier ones)."""
    message = server.smtp.wait_for(to, "sign-in code")
    mails = [m for m in server.smtp.messages if to in str(m["To"]) and "sign-in code" in str(m["Subject"])]
    assert len(mails) > seen, "no new sign-in code arrived"
    body = mails[-1].get_body(preferencelist=("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", body).group(1), message


def test_sign_in_with_emailed_code_then_with_a_recovery_code(live_server, browser):
    page, server = browser, live_server
    sign_in_steps(page, server, OWNER)
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    # The owner enforces MFA for the account and makes a set of recovery codes.
    page.goto(server.url + "/security/account")
    page.select_option("select[name=mfa_policy]", "enforced")
    page.click("form >> button[type=submit]:has-text('Save')")
    expect(page.locator("text=Enforced").first).to_be_visible()
    page.goto(server.url + "/profile/recovery-codes")
    page.click("button:has-text('Generate new codes')")
    codes = page.locator(".code-list code").all_inner_texts()
    assert len(codes) == 10
    sign_out(page)

    # Sign in again: password, then the code that arrived over SMTP.
    sign_in_steps(page, server, OWNER)
    expect(page).to_have_url(re.compile(r"/login/code"))
    code, _ = emailed_code(server, OWNER)
    page.fill("input[name=code]", "000000" if code != "000000" else "111111")
    page.click("button:has-text('Next')")
    expect(page.locator("p.error")).to_be_visible()
    page.fill("input[name=code]", code)
    page.click("button:has-text('Next')")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    sign_out(page)

    # And with a recovery code instead of the emailed one; a used code does not work twice.
    for attempt in range(2):
        sign_in_steps(page, server, OWNER)
        page.click("text=Use a recovery code instead")
        page.fill("input[name=code]", codes[0])
        page.click("button:has-text('Next')")
        if attempt == 0:
            expect(page).to_have_url(re.compile(r"/dashboard$"))
            sign_out(page)
        else:
            expect(page.locator("p.error")).to_be_visible()
            expect(page).to_have_url(re.compile(r"/login/code"))


def _invite(page, server, emails):
    page.goto(server.url + "/users/invite")
    page.fill("textarea[name=emails]", "\n".join(emails))
    page.click("button:has-text('Send invit')")


def test_users_listing_with_two_chips_sorted_and_paged(live_server, browser):
    page, server = browser, live_server
    sign_in_steps(page, server, OWNER)
    invited = [f"e2e-{i:02d}@example.com" for i in range(14)]
    _invite(page, server, invited)

    page.goto(server.url + "/users/")
    page.fill("input[name='f.username']", "e2e-")
    page.select_option("select[name='f.status']", "pending")
    page.click("button[form$='-filter']")
    chips = page.locator(".chip")
    expect(chips).to_have_count(2)
    expect(page.locator(".summary")).to_have_text("1 - 10 of 14")
    assert "f.username=e2e-" in page.url and "f.status=pending" in page.url

    # Sort by username, descending: a second click on the header.
    page.click("th[data-column=username] a")
    expect(page.locator("th[data-column=username]")).to_have_attribute("aria-sort", "ascending")
    page.click("th[data-column=username] a")
    expect(page.locator("th[data-column=username]")).to_have_attribute("aria-sort", "descending")
    first = page.locator("tbody td[data-column=username]").first
    expect(first).to_have_text("e2e-13@example.com")

    page.click("a[rel=next]")
    expect(page.locator(".summary")).to_have_text("11 - 14 of 14")
    expect(page.locator("tbody td[data-column=username]").last).to_have_text("e2e-00@example.com")

    # Removing one chip widens the listing again; a reload keeps the state of the URL.
    page.click(".chip:has-text('Status') a")
    expect(chips).to_have_count(1)
    page.reload()
    expect(page.locator(".chip")).to_have_count(1)
    expect(page.locator(".summary")).to_contain_text("of 14")


def test_invited_user_sets_up_the_account_and_lands_on_my_devices(live_server, browser):
    page, server = browser, live_server
    sign_in_steps(page, server, OWNER)
    _invite(page, server, ["newcomer@example.com"])
    expect(page.locator(".flash")).to_contain_text("newcomer@example.com")
    sign_out(page)

    mail = server.smtp.wait_for("newcomer@example.com", "nvit")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"(http://127\.0\.0\.1:\d+/invite/\S+)", body).group(1)
    page.goto(link)
    page.fill("input[name=first_name]", "Nina")
    page.fill("input[name=last_name]", "Newcomer")
    page.fill("input[name=password]", "weak")
    page.fill("input[name=confirm]", "weak")
    page.click("button[type=submit]")
    expect(page.locator("p.error").first).to_be_visible()

    page.fill("input[name=password]", "Strong-Enough-42")
    page.fill("input[name=confirm]", "Strong-Enough-42")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/my-devices$"))
    expect(page.locator(".profile-menu summary")).to_contain_text("Nina Newcomer")

    # The link was single use.
    page.goto(link)
    expect(page.locator("body")).to_contain_text(re.compile("no longer valid|expired|not valid|used", re.I))
