"""The decoder ``tokquant train-vocoder`` makes: its network (``network``), losses and
training (``losses``, ``training``), its file (``file``) and its place in the one
decoder interface (``decoder``)."""
