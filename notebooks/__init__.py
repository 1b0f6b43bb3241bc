"""Databricks source-format notebooks for auditors (01_…06_*.py), the local stand-ins for
what Databricks gives a notebook (`_local`) and the local runner (`python -m notebooks.run`)."""
