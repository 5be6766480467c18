"""Account security rules (E1): the account's MFA policy and its audit logging switch.

Called by ``app/security/views.py``. The sign-in itself reads the policy through
``app.auth.services.mfa_applies``.
"""
from __future__ import annotations

from app.audit.services import record
from app.errors import NotFound
from app.extensions import db
from app.models import Account, User
from app.models.accounts import MfaPolicy

POLICY_LABELS = {
    MfaPolicy.disabled: "Disabled",
    MfaPolicy.per_user: "Enabled (it can be switched on per user)",
    MfaPolicy.enforced: "Enforced (it applies to every user)",
}


def update_account_security(account_id: int, actor: User, mfa_policy: MfaPolicy,
                            audit_enabled: bool) -> bool:
    """Save the settings; False when nothing changed. The change is audited even when it
    switches audit logging off: the event is written while logging is still on."""
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    before = {"mfa_policy": account.mfa_policy.value, "audit_enabled": account.audit_enabled}
    after = {"mfa_policy": mfa_policy.value, "audit_enabled": audit_enabled}
    if before == after:
        return False
    details = {"before": before, "after": after}
    if account.audit_enabled:
        # Written first, while logging is on (it may be switching off right now).
        record("account_security.changed", account.company, details, account_id=account.id,
               actor=actor, commit=False)
        account.mfa_policy, account.audit_enabled = mfa_policy, audit_enabled
    else:
        account.mfa_policy, account.audit_enabled = mfa_policy, audit_enabled
        record("account_security.changed", account.company, details, account_id=account.id,
               actor=actor, commit=False)
    db.session.commit()
    return True
