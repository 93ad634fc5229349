"""Executing Mecha recipes: a streaming merge over safetensors files (``mirc merge``).

``inputs`` finds a recipe's models and checks them against each other from their headers;
``evaluate`` binds the recipe and computes one key; ``methods`` holds sd-mecha's merge math;
``output`` plans and writes the output file; ``engine`` ties them together. The package
itself imports nothing, so that commands which do not merge never import torch.
"""
