"""What a binary file says about itself, headers only: the names it carries and its GPU code."""
