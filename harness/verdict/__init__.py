"""Running a case and judging it: a device run against its reference (window and stream mode),
the metrics, and the acceptance checks."""
