"""Mecha merge recipes: parse, check, format, and compare them as graphs."""
