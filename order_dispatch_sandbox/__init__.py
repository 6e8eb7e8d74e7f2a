"""The vendor sandbox: simulators of the vendor APIs, faithful to their documents, with faults.

One aiohttp server serves every simulated vendor under a path prefix followed by the vendor's
real path (``/sourceorders/v1/orders``), plus an admin API under ``/_sandbox/`` to inject faults,
list what each vendor received, and reset state. Start it with ``order-dispatch sandbox``.
"""
