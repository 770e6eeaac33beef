"""Cross-cutting suites: docs, packaging, processes, several modules at once."""
