"""The GPU check's parts (``scripts/gpu_check.py`` runs them): pure comparisons (``compare``); the children
that read the machine from fresh interpreters (``children``) and their records (``views``); a random-weights
Whisper (``model``); the parts (``parts``, ``parts_work``), their order and the report (``jobs``); the result
type and the bounded child process (``result``); the wheels the GPU machine's image lacks (``wheels``)."""
