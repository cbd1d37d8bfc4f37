"""``python -m ocrvault`` is the ``ocrvault`` command."""

from ocrvault.cli import app

app()
