"""What is measured: datasets, the victim pipeline, attack objectives and metrics."""
