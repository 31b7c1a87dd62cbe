"""Tools for tests and demos. Nothing here is used by the trading loop."""
