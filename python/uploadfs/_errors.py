"""Exceptions: what struct up_error says, as the OpenAI SDK's exception classes name it."""

import errno as _errno


class APIError(Exception):
    """Any failure of a call. message is one line and never holds a key; status_code is
    the HTTP status (0 when no answer came or the call failed before one); type, code and
    param are the server's error fields (None when it gave none); errno is the positive
    errno the C library returned."""

    def __init__(self, message, *, status_code=0, type=None, code=None, param=None, errno=0):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.errno = errno

    def __str__(self):
        if self.status_code:
            return f"Error code: {self.status_code} - {self.message}"
        return self.message

    def __repr__(self):
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code}, "
            f"type={self.type!r}, code={self.code!r}, param={self.param!r})"
        )


class APIStatusError(APIError):
    """The server answered with an error status."""


class BadRequestError(APIStatusError):
    """400"""


class AuthenticationError(APIStatusError):
    """401"""


class PermissionDeniedError(APIStatusError):
    """403"""


class NotFoundError(APIStatusError):
    """404"""


class ConflictError(APIStatusError):
    """409"""


class UnprocessableEntityError(APIStatusError):
    """422"""


class RateLimitError(APIStatusError):
    """429"""


class InternalServerError(APIStatusError):
    """500 and above"""


class APIConnectionError(APIError):
    """No answer: the server could not be reached, the connection broke, TLS failed."""


class APITimeoutError(APIConnectionError):
    """No progress within the timeout."""


class MD5MismatchError(APIError):
    """upload_file_chunked(md5=...): the content's MD5 is not the one expected. The upload
    was cancelled."""


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_CONNECTION = {
    _errno.ECONNREFUSED,
    _errno.ECONNRESET,
    _errno.ECONNABORTED,
    _errno.EHOSTUNREACH,
    _errno.ENETUNREACH,
    _errno.EPROTO,
    _errno.EPIPE,
}


def error_class(status, errnum):
    """The exception class for an HTTP status and a positive errno."""
    if status >= 500:
        return InternalServerError
    if status:
        return _BY_STATUS.get(status, APIStatusError)
    if errnum == _errno.ETIMEDOUT:
        return APITimeoutError
    if errnum in _CONNECTION:
        return APIConnectionError
    if errnum == _errno.EBADMSG:
        return MD5MismatchError
    return APIError


def from_up_error(err, rc):
    """The exception for a failed call: err is a filled struct up_error, rc its return."""

    def text(field):
        s = bytes(field).split(b"\0", 1)[0].decode("utf-8", "replace")
        return s or None

    errnum = -(err.errnum or rc)
    message = text(err.message) or (
        _errno.errorcode.get(errnum, "error") + ": " + (_os_strerror(errnum))
    )
    cls = error_class(err.status, errnum)
    return cls(
        message,
        status_code=err.status,
        type=text(err.type),
        code=text(err.code),
        param=text(err.param),
        errno=errnum,
    )


def _os_strerror(n):
    import os

    try:
        return os.strerror(n)
    except ValueError:
        return "unknown error"
