"""Errors the pipeline raises for bad input. Each message is one line a visitor or operator can act on."""


class PipelineError(Exception):
    """Base of every error caused by the input rather than by a bug."""


class EmptyImageError(PipelineError):
    def __init__(self) -> None:
        super().__init__("the file is empty (0 bytes)")


class NotAnImageError(PipelineError):
    def __init__(self, detail: str = "") -> None:
        super().__init__("the file is not an image" + (f" ({detail})" if detail else ""))


class TruncatedImageError(PipelineError):
    """A file in a format we know whose header, pixels or EXIF cannot be read: cut short, or damaged."""

    def __init__(self, detail: str = "it ends before the picture does") -> None:
        super().__init__(f"the image file is truncated or corrupt; {detail}")


class ImageTooLargeError(PipelineError):
    def __init__(self, limit: int, size: tuple[int, int] | None = None, pixels: int | None = None) -> None:
        if size is not None:
            described = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels"
        elif pixels is not None:
            described = f"{pixels:,} pixels"
        else:
            described = "too many pixels"
        super().__init__(f"the image is {described}, over the limit of {limit:,}")


class NoPersonError(PipelineError):
    def __init__(self) -> None:
        super().__init__("no person found: the photo needs a visitor facing the camera")


class ArtworkSpecError(PipelineError):
    """An artwork's boxes or reference region make no sense."""
