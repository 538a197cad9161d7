"""What a run leaves behind: the terminal summary, the report folder (JSON, HTML, plots) and the
run's provenance."""
