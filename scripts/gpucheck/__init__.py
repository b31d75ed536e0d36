"""The GPU check's parts (``scripts/gpu_check.py`` runs them): pure comparisons (``compare``), the children that
read the machine from fresh interpreters (``children``), the parts (``parts``, ``parts_work``), their order and
the report (``jobs``), the result type and the bounded child process (``result``), and the wheels the GPU
machine's image lacks (``wheels``)."""
