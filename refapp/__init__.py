"""assay refapp package."""
