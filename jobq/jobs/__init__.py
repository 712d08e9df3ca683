"""The job layer, between the worker and the store: what turns `Job`s into rows and back
(`rows.JobRows`), the operations of `jobq.parallel` / `jobq.serial` (`compose`), and which
job's attempt is running in this thread or task (`context`)."""
