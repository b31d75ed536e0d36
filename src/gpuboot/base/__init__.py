"""What every layer uses: the value type, the logger, shell quoting, optional imports."""
