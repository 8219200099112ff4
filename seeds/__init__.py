"""Demo data from the source documents (shared/seed-facts.md)."""
