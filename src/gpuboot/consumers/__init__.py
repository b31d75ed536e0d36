"""The GPU consumers gpuboot knows, one row each, and what the installed ones need."""
