"""assay actors package."""
