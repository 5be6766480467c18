from tests.conftest import sign_in


def test_healthz_reports_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_owner_signs_in_and_sees_licence_counters(client, factory):
    account = factory.account("Acme")
    response = sign_in(client, account.owner.username)
    assert response.status_code == 200
    assert "Users <b>1/25</b>" in response.get_data(as_text=True)
