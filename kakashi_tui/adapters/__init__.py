"""Adapters around the core: Kalshi client, simulated exchange, beliefs files, store."""
