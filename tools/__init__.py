"""Build tools: what the build and the docs use, outside the installed packages."""
