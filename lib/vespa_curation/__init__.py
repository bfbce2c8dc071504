"""VESPA heliophysics curation workbench: harvest → validate → export to DaCHS."""
__version__ = "0.1.0"
