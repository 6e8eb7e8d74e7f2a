"""``python -m cli``: the ``order-dispatch`` command."""

from cli.main import main

main()
