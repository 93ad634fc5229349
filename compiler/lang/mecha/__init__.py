"""Mecha merge recipes: parse, check, format, and compare them as graphs.

The pipeline for one recipe is ``parse_recipe`` → ``check_recipe`` → ``format_recipe`` (or
``recipe_graph``); ``files`` runs it over files for the command line.
"""

from compiler.lang.mecha.check import MirResolver, ResolvedModel, check_recipe
from compiler.lang.mecha.format import format_recipe
from compiler.lang.mecha.graph import RecipeGraph, recipe_graph, sd_mecha_form
from compiler.lang.mecha.parser import parse_recipe

__all__ = [
    "MirResolver",
    "RecipeGraph",
    "ResolvedModel",
    "check_recipe",
    "format_recipe",
    "parse_recipe",
    "recipe_graph",
    "sd_mecha_form",
]
