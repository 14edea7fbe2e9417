"""Console scripts: one module per command. Only this package parses arguments."""
