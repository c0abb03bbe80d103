"""assay coordinator package."""
