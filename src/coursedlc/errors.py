"""The one exception family of coursedlc.

Every message says what failed, with the offending value and where it came from,
then what to do next. The command line and the Invoke tasks turn these into a
non-zero exit with the message; anything else escaping is a bug.
"""


class CourseDLCError(Exception):
    """Base class of every error coursedlc reports to a user."""

    exit_code = 1


class ConfigError(CourseDLCError):
    """A setting (from invoke.yaml or the command line) is invalid."""


class DataError(CourseDLCError):
    """The grade file cannot be read or a record in it is invalid."""


class StageInputError(CourseDLCError):
    """A stage needs the output of an earlier stage that is missing."""


class ParityError(CourseDLCError):
    """The exported ONNX model does not compute what the PyTorch model computes."""


class ConversionError(CourseDLCError):
    """The Qualcomm backend could not make a complete, valid DLC."""


class AccuracyError(CourseDLCError):
    """The int8 model loses more accuracy than the configured tolerance allows."""


class ToolError(CourseDLCError):
    """An external tool (an SDK tool, pip, a Python) failed or timed out.

    The command exits with the tool's own exit code when it has one.
    """

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None and 0 < exit_code < 256:
            self.exit_code = exit_code


class SdkError(CourseDLCError):
    """The QAIRT SDK or its Python environment is missing or incomplete."""


class ContainerError(ToolError):
    """The container engine is missing, or an image build or container failed."""


class WriteError(CourseDLCError):
    """The build folder cannot be written (disk full, read-only, no permission)."""
