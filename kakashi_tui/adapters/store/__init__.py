"""SQLite storage, by job: ``schema`` (the tables, and the SQL that moved older files to the
current form), ``controls`` (the typed control rows), ``writer`` (``Store``: the one writer), ``rows``
(reading stored rows back into the domain's types, refusing corrupt ones). Reads for the report,
replay, status and the desk live in ``adapters/queries.py``.
"""
