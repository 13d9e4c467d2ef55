"""Background workers: job execution and the service-task connectors they run."""
