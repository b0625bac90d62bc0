"""The software's version, read from the installed distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("troc")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"

SOFTWARE = f"troc/{__version__}"
