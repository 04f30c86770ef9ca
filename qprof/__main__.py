"""``python -m qprof``: the same as the ``qprof`` command."""

from qprof.cli import main

main()
