"""Storage errors: what an operator can fix, said in one line."""

from __future__ import annotations

from protocol.errors import TrocError


class StorageError(TrocError):
    """The database cannot be used."""

    code = "storage-error"


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or opened."""

    code = "database-unavailable"


class DatabaseBusy(DatabaseUnavailable):
    """Another process holds the database's write lock longer than we wait: try again soon."""

    code = "database-busy"


class WrongNodeError(StorageError):
    """The database belongs to another node's key."""

    code = "wrong-node"


class NotFound(StorageError):
    """No such record."""

    code = "not-found"


class Conflict(StorageError):
    """The record exists already."""

    code = "conflict"


class AlreadySubmitted(Conflict):
    """This form was sent already: ``result`` is what its first submission produced."""

    code = "already-submitted"

    def __init__(self, result: str) -> None:
        super().__init__("this form was sent already")
        self.result = result
