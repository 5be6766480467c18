"""Turns the exception tree (and HTTP errors) into pages, HTMX partials or JSON."""
from __future__ import annotations

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.errors import TesseraError


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, title: str, message: str, headers=None):
    from app.common.templating import render

    if _wants_json():
        response = jsonify(error=message)
        response.status_code = status
    else:
        response = render("errors.html", partial="error", status=status, code=status, title=title,
                          message=message)
    if headers:
        response.headers.update(headers)
    return response


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(TesseraError)
    def tessera_error(err: TesseraError):
        from app.extensions import db

        db.session.rollback()
        return error_response(err.status, err.title, err.message)

    @app.errorhandler(CSRFError)
    def csrf_error(err: CSRFError):
        return error_response(
            400, "Form expired", "The form was missing its security token or it expired. "
            "Reload the page and try again."
        )

    @app.errorhandler(429)
    def too_many(err):
        retry = getattr(err, "retry_after", None)
        message = "Too many attempts. Wait a few minutes, then try again."
        headers = {}
        if err.description and "per" in str(err.description):
            message = f"Too many attempts ({err.description}). Wait a little, then try again."
        if retry:
            headers["Retry-After"] = str(retry)
        return error_response(429, "Too many attempts", message, headers)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return error_response(err.code or 500, err.name, err.description or err.name)

    @app.errorhandler(Exception)
    def server_error(err: Exception):
        from app.extensions import db

        if isinstance(err, HTTPException):
            return http_error(err)
        app.logger.exception("unhandled error on %s", request.path)
        db.session.rollback()
        return error_response(500, "Server error", "Something went wrong on our side. It has been logged.")
