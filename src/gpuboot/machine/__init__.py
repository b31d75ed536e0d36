"""The machine as gpuboot reads it: driver files, the driver probe, installed metadata, CPUs, RAM."""
