"""The JSON API for agents (``/api/v1``): enrolment and the device's own record. No cookies,
no CSRF: an agent proves itself with its device token (``Authorization: Bearer``)."""
