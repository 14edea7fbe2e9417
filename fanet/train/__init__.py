"""Training helpers (host side): synthetic street scenes and short fine-tuning runs."""
