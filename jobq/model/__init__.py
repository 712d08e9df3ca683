"""The model layer: what a job is, how it is encoded, how retries are decided. No I/O."""
