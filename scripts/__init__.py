"""Developer tools run from the repository: the local cluster (cluster.py)."""
