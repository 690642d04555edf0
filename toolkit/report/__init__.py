"""Report-ready figures, tables, datasets and the report bundle."""
