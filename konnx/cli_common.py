"""What the `konnx` subcommands share: exit codes, user errors, --input-shape parsing, and loading
the Keras backend quietly. Imports nothing heavy: `konnx --help` must not load Keras/TensorFlow."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile

EXIT_OK = 0          # done; every requested output written
EXIT_ERROR = 1       # user error: bad model, bad input, bad output path, conversion refused, missing extra
EXIT_USAGE = 2       # command-line usage error (argparse)
EXIT_MISMATCH = 3    # the converted model's outputs differ from onnxruntime (nothing written)
EXIT_UNSUPPORTED = 4  # the model has ops konnx cannot convert (all listed; nothing written)
EXIT_INTERNAL = 5    # a bug in konnx (please report it)

EXIT_CODES_HELP = """exit codes:
  0  ok: every requested output written
  1  error: invalid model or inputs, bad output path, conversion refused, missing extra (nothing written)
  2  usage error (unknown option, missing argument)
  3  outputs differ from onnxruntime (convert writes nothing; `konnx verify MODEL --bisect` finds where)
  4  unsupported ops (every one listed; nothing written)
  5  internal error in konnx (a bug: please report it; --verbose shows the traceback)"""

TF_EXTRA = 'pip install "konnx[tf]"'
PLOT_EXTRA = 'pip install "konnx[plot]"'


class CliError(Exception):
    """A user error the command line reports in one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def parse_shapes(items) -> dict:
    """--input-shape NAME=D1,D2,... or NAME:D1,D2,... (? or -1 keeps a dim dynamic)."""
    shapes = {}
    for item in items or []:
        sep = "=" if "=" in item else ":"
        name, _, dims = item.rpartition(sep)
        if not name or not dims.strip():
            raise CliError(f"--input-shape expects NAME=D1,D2,... (or NAME:D1,D2,...), got {item!r}")
        try:
            shape = tuple(None if d.strip() in ("?", "-1") else int(d) for d in dims.split(","))
        except ValueError:
            raise CliError(f"--input-shape {item!r}: dims must be integers, ? or -1, separated by commas, "
                           f"got {dims!r}") from None
        if any(d is not None and d <= 0 for d in shape):
            raise CliError(f"--input-shape {item!r}: dims must be positive (or ? / -1 for dynamic)")
        if name in shapes:
            raise CliError(f"--input-shape names '{name}' twice")
        shapes[name] = shape
    return shapes


# ----------------------------------------------------------------------------- backend
def quiet_environment(verbose: bool) -> None:
    """Before TensorFlow is imported: its C++ logging obeys TF_CPP_MIN_LOG_LEVEL read at import
    (a user's own setting wins). --verbose leaves the backend's logging alone."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool):
    """Send file descriptor 2 to a temporary file: TensorFlow's native libraries log a few lines
    while loading (before absl logging is initialized, so TF_CPP_MIN_LOG_LEVEL cannot stop them),
    and the LiteRT interpreter announces its XNNPACK delegate."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def konnx_output_only(enabled: bool):
    """For a whole command: file descriptor 2, where native libraries (TensorFlow, absl, CUDA,
    LiteRT) write whenever they load, goes to /dev/null, while sys.stderr (konnx's console and
    messages) keeps writing to the real stderr. Only when sys.stderr is the process's own (not
    when a caller captures it)."""
    if not enabled or sys.stderr is None or sys.stderr is not sys.__stderr__:
        yield
        return
    sys.stderr.flush()
    real = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    previous = sys.stderr
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = real
        try:
            yield
        finally:
            real.flush()
            os.dup2(real.fileno(), 2)
            sys.stderr = previous
            real.close()


def load_backend(verbose: bool = False):
    """Import keras (and its backend) for a command that builds or runs models; konnx's layers
    register on the way. A missing TensorFlow is one line naming the extra, not a traceback."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    quiet_environment(verbose)
    try:
        with native_stderr_silenced(not verbose):
            import keras
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in ("tensorflow", "tensorflow_cpu", "tf_keras"):
            raise CliError(f"the Keras TensorFlow backend needs TensorFlow, which is not installed: {TF_EXTRA} "
                           "(or set KERAS_BACKEND=jax or torch)") from None
        if (e.name or "").split(".")[0] in ("keras", "jax", "torch"):
            raise CliError(f"konnx needs '{e.name}', which is not installed: pip install konnx "
                           f"({TF_EXTRA} for the TensorFlow backend)") from None
        raise
    if not verbose:
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        absl_logging = sys.modules.get("absl.logging")
        if absl_logging is not None:
            absl_logging.set_verbosity(absl_logging.ERROR)
    return keras
