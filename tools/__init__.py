"""Maintenance scripts for the registry (not part of the installed ``compiler`` package)."""
