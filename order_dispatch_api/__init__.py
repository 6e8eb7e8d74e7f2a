"""order-dispatch's HTTP API process, and the operator console it serves."""
