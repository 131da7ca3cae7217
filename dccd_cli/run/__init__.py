"""Orchestration shared by the CLI and the Python API: validation, planning, downloads, sync."""
