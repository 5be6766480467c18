"""Behind a trusted reverse proxy the audit log and throttling see the real client address."""
from app import create_app
from app.config import TestConfig
from app.models import AuditEvent


def test_forwarded_address_is_used_only_when_proxy_hops_are_configured(app, db, _schema, tmp_path):
    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.7")):
        proxied = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=_schema, PROXY_HOPS=hops,
                                        INSTANCE_PATH=str(tmp_path / f"i{hops}")))
        client = proxied.test_client()
        page = client.get("/login", headers={"X-Forwarded-For": "203.0.113.7"}).get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        headers = {"X-Forwarded-For": "203.0.113.7"}
        client.post("/login", data={"csrf_token": token, "username": f"nobody{hops}@example.com"}, headers=headers)
        client.post("/login/password", data={"csrf_token": token, "password": "Wrong-pass-1"}, headers=headers)
        with proxied.app_context():
            event = db.session.query(AuditEvent).filter_by(target=f"nobody{hops}@example.com").one()
            assert event.ip == expected
