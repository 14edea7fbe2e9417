"""Console scripts: device/ and host/ commands. Only this package parses arguments."""
