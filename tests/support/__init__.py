"""What the tests share, beside the test modules that mirror ``fanet/``: reference files,
host-made artefacts, TensorRT and CUDA stand-ins, the Python 3.6 environment (Python 3.6
compatible, except ``host_artefacts`` and ``python36_env``, which run on the host)."""
