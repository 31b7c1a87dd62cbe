"""The Kalshi adapter, by job: ``client`` (HTTP: pacing, retries, the one GET), ``wire`` (Kalshi's
payloads to raw rows, checked), ``source`` (the polling source), ``auth`` (request signing),
``ws`` (live books and prints over the WebSocket). Import a name from the module that owns it.
"""
