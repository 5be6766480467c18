"""Password rules, the shared NewPasswordForm, and the shape of recovery codes."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from app.auth import recovery
from app.auth.passwords import hash_password, password_problems, verify_password


@pytest.mark.parametrize("password, problems", [
    ("Abcdefg1", []),
    ("abcdefg1", ["an upper-case letter"]),
    ("ABCDEFG1", ["a lower-case letter"]),
    ("Abcdefgh", ["a digit"]),
    ("Abc1", ["at least 8 characters"]),
    ("", ["at least 8 characters", "an upper-case letter", "a lower-case letter", "a digit"]),
])
def test_password_rules(password, problems):
    assert password_problems(password) == problems


def test_hash_verifies_only_the_same_password(app):
    stored = hash_password("Correct-Horse-9")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "Correct-Horse-9")
    assert not verify_password(stored, "correct-horse-9")
    assert not verify_password(None, "Correct-Horse-9")


def _form(app, **data):
    from app.auth.forms import NewPasswordForm

    with app.test_request_context(method="POST"):
        form = NewPasswordForm(formdata=MultiDict(data), meta={"csrf": False})
        form.validate()
        return form


def test_new_password_form_accepts_a_good_pair(app):
    assert _form(app, password="Good-Pass-1", confirm="Good-Pass-1").errors == {}


def test_new_password_form_names_the_missing_rules(app):
    form = _form(app, password="lowercase", confirm="lowercase")
    assert form.errors["password"] == ["The password needs an upper-case letter, a digit."]


def test_new_password_form_wants_both_the_same(app):
    form = _form(app, password="Good-Pass-1", confirm="Good-Pass-2")
    assert form.errors["confirm"] == ["The two passwords are not the same."]


def test_new_password_input_turns_the_strength_meter_on(app):
    form = _form(app, password="", confirm="")
    assert "data-strength" in form.password()
    assert 'autocomplete="new-password"' in form.password()


def test_recovery_codes_read_like_abcd_efgh_jkmn():
    codes = {recovery.new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 14 and code.count("-") == 2
        assert not set(code.replace("-", "")) & set("01ilo")


def test_recovery_code_input_is_forgiving_about_case_spaces_and_dashes():
    assert recovery.normalise(" ABCD efgh-JKMN ") == "abcd-efgh-jkmn"
    assert recovery.normalise("abcdefghjkmn") == "abcd-efgh-jkmn"
    assert recovery.normalise("abcd-efgh") is None
    assert recovery.normalise("123456") is None
