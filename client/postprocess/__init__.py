"""Post-processing filters for raw model completions."""
