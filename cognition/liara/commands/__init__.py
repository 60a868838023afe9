"""The commands of ``liara``, grouped by what they act on; ``cognition/liara/cli.py`` assembles them."""
