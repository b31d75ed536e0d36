"""The GPU consumers gpuboot knows, one row each (``table.CONSUMER_TABLE``), and what the installed ones need.

``types`` (the row and what it carries), ``readers`` (a consumer's needs from its version or its Requires-Dist),
``table`` (the rows), ``binaries`` (a consumer's own binaries and the majors they link), ``installed`` (the needs
of the consumers installed on a machine), ``pairings`` (requirements against what is installed, and the rows'
pairings).  Every other module asks the rows; none names a consumer.
"""
