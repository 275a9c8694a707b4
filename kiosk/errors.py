"""Process exit codes and the errors of the service layer (settings, models, artworks)."""

from __future__ import annotations

import enum

from pipeline import errors as pipeline_errors


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # unexpected: a bug or an environment problem, with a traceback in the log
    USAGE = 2  # bad command line (argparse's own code)
    INPUT_NOT_FOUND = 3
    EMPTY_FILE = 4
    NOT_AN_IMAGE = 5
    TRUNCATED_IMAGE = 6
    IMAGE_TOO_LARGE = 7
    NO_PERSON = 8
    MODEL_MISSING = 9
    ARTWORK_NOT_FOUND = 10
    BAD_SETTINGS = 11
    MODEL_FETCH_FAILED = 12
    DATABASE_UNAVAILABLE = 13
    STORAGE_FAILED = 14  # a photo could not be written or deleted (disk full, permissions)
    USER_EXISTS = 15  # `admin create-user`: a staff account of that name exists already
    WEAK_PASSWORD = 16  # a staff password refused: too short (or too long)
    PHOTO_STORE_UNAVAILABLE = 17  # the S3 photo store cannot be reached, or refuses our credentials


class ArtBoothError(Exception):
    """An error with a one-line message for the user and its exit code."""

    exit_code: ExitCode = ExitCode.FAILURE


class InputNotFoundError(ArtBoothError):
    exit_code = ExitCode.INPUT_NOT_FOUND


class ArtworkNotFoundError(ArtBoothError):
    exit_code = ExitCode.ARTWORK_NOT_FOUND


class StorageFailedError(ArtBoothError):
    exit_code = ExitCode.STORAGE_FAILED


class ArtworkImageError(ArtBoothError):
    """An artwork image refused: empty, not an image, truncated or too large (``exit_code`` says which)."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class InvalidEditError(ArtBoothError):
    """A staff change to an artwork or kiosk that cannot be made as given; the message says what to fix."""

    exit_code = ExitCode.USAGE


class ArtworkInUseError(InvalidEditError):
    """An artwork that cannot be deleted (photos refer to it, or its files bring it back); it can be disabled."""


class KioskExistsError(InvalidEditError):
    """A kiosk of that id is registered already."""


class KioskNotFoundError(ArtBoothError):
    exit_code = ExitCode.INPUT_NOT_FOUND


class ModelMissingError(ArtBoothError):
    """A model file or model directory is absent or fails its check; the message says how to get it."""

    exit_code = ExitCode.MODEL_MISSING


class ModelFetchError(ArtBoothError):
    """`artbooth models fetch` could not download or verify a package."""

    exit_code = ExitCode.MODEL_FETCH_FAILED


_PIPELINE_EXIT_CODES: dict[type[pipeline_errors.PipelineError], ExitCode] = {
    pipeline_errors.EmptyImageError: ExitCode.EMPTY_FILE,
    pipeline_errors.NotAnImageError: ExitCode.NOT_AN_IMAGE,
    pipeline_errors.TruncatedImageError: ExitCode.TRUNCATED_IMAGE,
    pipeline_errors.ImageTooLargeError: ExitCode.IMAGE_TOO_LARGE,
    pipeline_errors.NoPersonError: ExitCode.NO_PERSON,
    pipeline_errors.ArtworkSpecError: ExitCode.ARTWORK_NOT_FOUND,
}


def exit_code_for(exc: BaseException) -> ExitCode:
    if isinstance(exc, ArtBoothError):
        return exc.exit_code
    for cls, code in _PIPELINE_EXIT_CODES.items():
        if isinstance(exc, cls):
            return code
    return ExitCode.FAILURE
