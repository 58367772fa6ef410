"""Published mel vocoders (Vocos, BigVGAN): their networks built from a checked config
(``networks``; the folder's bytes are ``formats.pretrained_vocoder``'s) and their place
in the one decoder interface (``decoder``)."""
