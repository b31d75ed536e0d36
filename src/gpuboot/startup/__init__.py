"""How other processes start right: the start-up hook's ``.pth`` and the environment of child processes."""
