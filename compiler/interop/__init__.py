"""Interop with the upstream MIR database (``mir.json``): import it into specs, export the
registry back in its format. A tool beside the pipeline: it uses the loader, the validator and
the registry check, and nothing in the pipeline imports it."""
