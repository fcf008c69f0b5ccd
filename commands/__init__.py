"""The refledger command line, one module per noun; ``cli.py`` is the entry point."""
