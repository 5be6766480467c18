"""Agent API, version 1. JSON in, JSON out; errors are ``{"error": "..."}`` with a status:

``POST /api/v1/agent/enroll``  {enrollment_key, hostname, os, agent_version, hardware_id}
    201 (a new device) or 200 (re-enrolled: the same device, a new token)
    -> {device_id, device_token, state}; unknown key 404; revoked, disabled, expired or not
    yet valid package 403; device limit of the package or licence 409; malformed body 400;
    too many attempts from one address 429 (``AGENT_ENROLL_LIMIT``).
``GET /api/v1/agent/me``  with ``Authorization: Bearer <device token>``
    -> {device_id, name, hostname, state}; 401 for a missing, unknown or revoked token.

CSRF-exempt (``configure_blueprints`` exempts the blueprint): nothing here reads a cookie.
The relay (issue 5) authenticates with the same token through
``app.devices.services.authenticate_device``.
"""
from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request
from flask_limiter.util import get_remote_address

from app.devices import services
from app.extensions import limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_BODY = 16 * 1024  # an enrolment request is a few hundred bytes


def _enrol_limit() -> str:
    return current_app.config["AGENT_ENROLL_LIMIT"]


def _json_body():
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise services.MalformedRequest(f"The request body is larger than {MAX_BODY} bytes.")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise services.MalformedRequest(f"The request body is larger than {MAX_BODY} bytes.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise services.MalformedRequest("The request body is not valid JSON.") from None


@bp.post("/agent/enroll")
@limiter.limit(_enrol_limit, key_func=get_remote_address, scope="agent:enroll",
               error_message="Too many enrolment attempts from this address; wait a minute and try again.")
def enroll():
    enrol_request = services.parse_enrol_request(_json_body())
    result = services.enrol(enrol_request)
    device = result.device
    response = jsonify(device_id=device.id, device_token=result.token,
                       state=device.enrolment_state.value)
    response.status_code = 201 if result.created else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


@bp.get("/agent/me")
def me():
    device = services.authenticate_device(_bearer_token())
    if device is None:
        response = jsonify(error="The device token is missing, unknown or revoked.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="tessera-agent"'
        return response
    return jsonify(device_id=device.id, name=device.display_name, hostname=device.hostname,
                   state=device.enrolment_state.value)
