"""Queries every area's services ask of a model that belongs to one account (it has ``id``,
``account_id`` and, for :func:`name_taken`, ``name``): fetching one of the account's rows, and
whether a name is in use in the account.

Called by the services of groups, roles, applications, role assignments (and schedules),
devices and deployment packages. Each caller keeps its own wording for the error it raises.
"""
from __future__ import annotations

from sqlalchemy import func, select

from app.errors import NotFound
from app.extensions import db


def of_account(model, account_id: int, object_id: int, *, missing: str):
    """The ``model`` row ``object_id`` of ``account_id``. Another account's id is not found
    either (``NotFound(missing)``), so ids never tell one account about another's rows."""
    found = db.session.scalar(select(model).where(model.id == object_id, model.account_id == account_id))
    if found is None:
        raise NotFound(missing)
    return found


def name_taken(model, account_id: int, name: str, *conditions, except_id: int | None = None) -> bool:
    """Whether another ``model`` row of ``account_id`` is called ``name``, in any case.
    ``conditions`` narrow where a name must be unique (groups: within their kind); ``except_id``
    is the row being renamed."""
    query = select(model.id).where(model.account_id == account_id, func.lower(model.name) == name.lower(),
                                   *conditions)
    if except_id is not None:
        query = query.where(model.id != except_id)
    return db.session.scalar(query) is not None
