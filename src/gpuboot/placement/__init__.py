"""Where work goes: ``select_device``'s reasons, GPU memory and whether a job fits."""
