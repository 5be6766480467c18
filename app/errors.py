"""The one small exception tree raised by services; ``configure_errorhandlers`` turns each into
an HTTP status with a page, a partial or a JSON body."""


class TesseraError(Exception):
    status = 400
    title = "Request not accepted"

    def __init__(self, message: str = "", field: str | None = None):
        super().__init__(message or self.title)
        self.message = message or self.title
        self.field = field


class ValidationError(TesseraError):
    status = 422
    title = "Invalid input"


class NotFound(TesseraError):
    status = 404
    title = "Not found"


class Forbidden(TesseraError):
    status = 403
    title = "Not allowed"


class Conflict(TesseraError):
    status = 409
    title = "Conflict"


class LimitReached(TesseraError):
    status = 409
    title = "Licence limit reached"
