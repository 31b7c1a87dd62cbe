"""Kakashi: a terminal paper-trading desk for Kalshi binary prediction markets.

Paper only: no code path in this package places a real order.
"""

__version__ = "0.1.0"
