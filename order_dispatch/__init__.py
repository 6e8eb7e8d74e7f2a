"""order-dispatch: queue-driven dispatch of normalized orders to fulfilment vendors.

Shared pieces live here: the contract (:mod:`order_dispatch.contract`), settings, Redis key
names, secret redaction, logging, the result stream and its consumer helper, and the CLI.
"""

__version__ = "0.1.0"
