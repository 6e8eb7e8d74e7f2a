"""The ``order-dispatch`` command, the end-to-end demo and the embedded Redis.

This layer sits above everything it starts: it may import the foundation (``order_dispatch``),
``producers``, ``worker`` and ``sandbox``; none of them imports it.
"""
