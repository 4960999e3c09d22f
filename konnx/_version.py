"""The konnx version (its own module so the command line reads it without importing the package's lazy attributes)."""
__version__ = "0.1.0"
