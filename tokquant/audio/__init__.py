"""Audio in and out: soundfile reads and writes (:mod:`.io`), features from waveforms
(:mod:`.frontend`), and waveforms back from features (:mod:`.vocoder`)."""
