"""``python -m order_dispatch_cli``: the ``order-dispatch`` command."""

from order_dispatch_cli.main import main

main()
