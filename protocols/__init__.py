"""assay protocols package."""
