"""Training (host side): the paper's recipe with its data and augmentation, OHEM loss and
auxiliary heads, distributed processes, resumable state and the loop."""
