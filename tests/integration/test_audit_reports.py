"""Log reports: generating a CSV for a date range, downloading and deleting it, and who may."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import event as sa_event, func, select

from app.models import AuditEvent, AuditReport
from tests.conftest import csrf_token, sign_in


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def add_event(db, account, at, action="user.updated", target="alice@example.com", actor="bob@example.com",
              ip="10.0.0.7", details=""):
    db.session.add(AuditEvent(at=at, account_id=account.id, actor=actor, ip=ip, action=action,
                              target=target, details=details))
    db.session.commit()


def report_files(app, account) -> list[Path]:
    folder = Path(app.instance_path) / "reports" / str(account.id)
    return sorted(folder.glob("*")) if folder.exists() else []


def generate(client, date_from, date_to, follow=True):
    token = csrf_token(client, "/logs/reports")
    return client.post("/logs/reports", data={"csrf_token": token, "date_from": date_from,
                                              "date_to": date_to}, follow_redirects=follow)


def download_rows(client, report_id):
    response = client.get(f"/logs/reports/{report_id}/download")
    assert response.status_code == 200
    return response, list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def only_report(db, account) -> AuditReport:
    return db.session.scalars(select(AuditReport).where(AuditReport.account_id == account.id)).one()


def test_group_manager_generates_report_with_only_the_days_asked_for(app, db, client, factory):
    account = factory.account("Acme")
    manager = factory.user(account, "group_manager")
    add_event(db, account, utc(2024, 2, 29, 23, 59), target="before@example.com")
    add_event(db, account, utc(2024, 3, 1, 0, 0), target="first@example.com")
    add_event(db, account, utc(2024, 3, 31, 23, 59, 59), target="last@example.com")
    add_event(db, account, utc(2024, 4, 1, 0, 0), target="after@example.com")
    other = factory.account("Other")
    add_event(db, other, utc(2024, 3, 15, 12, 0), target="secret@other.example")
    sign_in(client, manager.username)

    page = generate(client, "2024-03-01", "2024-03-31")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "is ready: 2 events" in html
    report = only_report(db, account)
    assert report.rows == 2 and report.created_by == manager.username
    assert report_files(app, account) == [Path(app.instance_path) / "reports" / str(account.id) / f"{report.id}.csv"]
    assert "2024-03-01" in html and "2024-03-31" in html and manager.username in html
    response, rows = download_rows(client, report.id)
    assert rows[0] == ["Time", "User", "IP address", "Action", "Target", "Details"]
    assert [r[4] for r in rows[1:]] == ["first@example.com", "last@example.com"]
    assert rows[1][:4] == ["2024-03-01T00:00:00+00:00", "bob@example.com", "10.0.0.7", "user.updated"]


def test_download_is_a_utf8_csv_attachment(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 2, 9, 0), target="zoë@example.com", details="naïve ✓")
    sign_in(client, account.owner.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)

    response, rows = download_rows(client, report.id)

    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "audit-2024-05-01-to-2024-05-03.csv" in response.headers["Content-Disposition"]
    assert rows[1][4:] == ["zoë@example.com", "naïve ✓"]


def test_report_days_are_days_in_the_account_timezone(db, client, factory):
    account = factory.account("Kiwi", timezone="Pacific/Auckland")
    # 2024-03-01 11:30 UTC is already 2 March (00:30, UTC+13) in Auckland.
    add_event(db, account, utc(2024, 3, 1, 10, 59), target="first-of-march@example.com")
    add_event(db, account, utc(2024, 3, 1, 11, 30), target="second-of-march@example.com")
    sign_in(client, account.owner.username)

    generate(client, "2024-03-02", "2024-03-02")

    report = only_report(db, account)
    _, rows = download_rows(client, report.id)
    assert [r[4] for r in rows[1:]] == ["second-of-march@example.com"]
    assert rows[1][0] == "2024-03-02T00:30:00+13:00"


def test_cells_that_look_like_formulas_are_neutralised(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 2, 9, 0), actor="@evil", ip="+1", action="-2",
              target='=HYPERLINK("http://x.example","click")', details="\tcmd")
    add_event(db, account, utc(2024, 5, 2, 9, 1), target="\r=1+1", details="plain, with comma")
    sign_in(client, account.owner.username)
    generate(client, "2024-05-02", "2024-05-02")

    _, rows = download_rows(client, only_report(db, account).id)

    assert rows[1][1:] == ["'@evil", "'+1", "'-2", '\'=HYPERLINK("http://x.example","click")', "'\tcmd"]
    assert rows[2][4:] == ["'\r=1+1", "plain, with comma"]


def test_large_report_is_streamed_from_the_database_in_batches(app, db, client, factory, monkeypatch):
    from app.audit import reports

    monkeypatch.setattr(reports, "BATCH", 100)
    account = factory.account("Acme")
    db.session.add_all([AuditEvent(at=utc(2024, 6, 1, 0, 0, i % 60, i), account_id=account.id,
                                   action="user.updated", target=f"u{i}@example.com")
                        for i in range(2500)])
    db.session.commit()
    streamed = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        # The report's query: events of the range, oldest first.
        if "ORDER BY audit_event.at, audit_event.id" in statement and context is not None:
            streamed.append(context.execution_options.get("stream_results", False))

    sa_event.listen(db.engine, "before_cursor_execute", remember)
    try:
        sign_in(client, account.owner.username)
        page = generate(client, "2024-06-01", "2024-06-01")
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", remember)

    assert "is ready: 2500 events" in page.get_data(as_text=True)
    assert streamed and all(streamed), "the report query must stream (yield_per), not fetch all rows"
    _, rows = download_rows(client, only_report(db, account).id)
    assert len(rows) == 2501
    assert len({r[4] for r in rows[1:]}) == 2500


@pytest.mark.parametrize("date_from, date_to, message", [
    ("2024-03-10", "2024-03-01", "The last day must be on or after the first day."),
    ("2023-01-01", "2024-01-02", "A report covers at most 366 days"),
    ("", "2024-03-01", "Enter the first day of the report."),
    ("2024-03-01", "", "Enter the last day of the report."),
    ("yesterday", "2024-03-01", "Not a valid date value."),
])
def test_bad_date_range_shows_a_clear_error_and_creates_nothing(app, db, client, factory, date_from,
                                                                 date_to, message):
    account = factory.account("Acme")
    sign_in(client, account.owner.username)

    response = generate(client, date_from, date_to)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AuditReport)) == 0
    assert report_files(app, account) == []


def test_a_full_leap_year_is_accepted(db, client, factory):
    account = factory.account("Acme")
    sign_in(client, account.owner.username)

    response = generate(client, "2024-01-01", "2024-12-31")

    assert "is ready: 0 events" in response.get_data(as_text=True)


def test_administrator_deletes_a_report_and_its_file_and_it_is_audited(app, db, client, factory):
    account = factory.account("Acme")
    admin = factory.user(account, "administrator")
    sign_in(client, admin.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)
    assert len(report_files(app, account)) == 1

    token = csrf_token(client, "/logs/reports")
    page = client.post(f"/logs/reports/{report.id}/delete", data={"csrf_token": token},
                       follow_redirects=True)

    assert page.status_code == 200
    assert "The report was deleted." in page.get_data(as_text=True)
    assert "No reports yet" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AuditReport)) == 0
    assert report_files(app, account) == []
    deleted = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "report.deleted")).one()
    assert deleted.account_id == account.id and deleted.actor == admin.username
    assert deleted.target == "2024-05-01 to 2024-05-03"


def test_group_manager_may_download_but_not_delete(app, db, client, factory):
    account = factory.account("Acme")
    manager = factory.user(account, "group_manager")
    sign_in(client, manager.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)

    page = client.get("/logs/reports").get_data(as_text=True)
    assert "Download" in page and ">Delete<" not in page
    token = csrf_token(client, "/logs/reports")
    response = client.post(f"/logs/reports/{report.id}/delete", data={"csrf_token": token})

    assert response.status_code == 403
    assert db.session.get(AuditReport, report.id) is not None
    assert len(report_files(app, account)) == 1
    assert client.get(f"/logs/reports/{report.id}/download").status_code == 200


def test_regular_user_cannot_see_or_generate_reports(db, client, factory):
    account = factory.account("Acme")
    user = factory.user(account, "user")
    sign_in(client, user.username)

    assert client.get("/logs/reports").status_code == 403
    token = csrf_token(client, "/my-devices")
    response = client.post("/logs/reports", data={"csrf_token": token, "date_from": "2024-01-01",
                                                  "date_to": "2024-01-02"})
    assert response.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(AuditReport)) == 0


def test_another_accounts_report_is_not_found(app, db, client, factory):
    other = factory.account("Other")
    sign_in(client, other.owner.username)
    generate(client, "2024-05-01", "2024-05-03")
    foreign = only_report(db, other)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logs/reports")})
    account = factory.account("Acme")
    sign_in(client, account.owner.username)

    assert foreign.id not in [int(i) for i in re.findall(r"/logs/reports/(\d+)/", client.get("/logs/reports").get_data(as_text=True))]
    assert client.get(f"/logs/reports/{foreign.id}/download").status_code == 404
    token = csrf_token(client, "/logs/reports")
    assert client.post(f"/logs/reports/{foreign.id}/delete", data={"csrf_token": token}).status_code == 404
    assert db.session.get(AuditReport, foreign.id) is not None
    assert len(report_files(app, other)) == 1


def test_delete_without_csrf_token_is_refused(app, db, client, factory):
    account = factory.account("Acme")
    sign_in(client, account.owner.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)

    assert client.post(f"/logs/reports/{report.id}/delete").status_code == 400
    assert db.session.get(AuditReport, report.id) is not None


def test_missing_report_file_is_a_clear_not_found(app, db, client, factory):
    account = factory.account("Acme")
    sign_in(client, account.owner.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)
    report_files(app, account)[0].unlink()

    response = client.get(f"/logs/reports/{report.id}/download")

    assert response.status_code == 404
    assert "generate it again" in response.get_data(as_text=True)


def test_generating_and_downloading_are_audited(db, client, factory):
    account = factory.account("Acme")
    sign_in(client, account.owner.username)
    generate(client, "2024-05-01", "2024-05-03")
    report = only_report(db, account)
    client.get(f"/logs/reports/{report.id}/download")

    actions = db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.account_id == account.id, AuditEvent.action.like("report.%"))
        .order_by(AuditEvent.id)).all()
    assert actions == ["report.generated", "report.downloaded"]
