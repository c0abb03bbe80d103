"""assay corpus package."""
