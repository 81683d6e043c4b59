"""Bundled demo material: three real public-domain photographs, an accession sheet, and a generator."""
