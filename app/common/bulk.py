"""The posted half of a listing's bulk actions (:class:`app.common.listing.BulkAction`): the
rows ticked in the listing, and the way back to the listing page they were ticked on.

Called by the views of users, devices, groups and role assignments.
"""
from __future__ import annotations

from flask import request, url_for


def selected_ids() -> list[int]:
    """The ids ticked in the listing (its ``selected`` checkboxes); anything that is not a
    plausible id is dropped rather than refused."""
    return [int(v) for v in request.form.getlist("selected") if v.strip().isdigit() and len(v) < 12]


def local_under(target: str, listing_url: str) -> str:
    """``target`` when it is a path below ``listing_url`` on this site (the listing with its
    filters and page), else ``listing_url``: a posted "next" never leads off the site."""
    if target.startswith(listing_url) and "//" not in target and "\\" not in target:
        return target
    return listing_url


def back_to_listing(endpoint: str) -> str:
    """The listing page (filters, sort and page kept) the bulk form's ``next`` field names,
    or the bare listing of ``endpoint``."""
    return local_under(request.form.get("next", ""), url_for(endpoint))
