"""The mix of CUDA libraries in one process (``check_process``)."""
