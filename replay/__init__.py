"""assay replay package."""
