"""The image pipeline: pure stages over numpy arrays, models passed in, no I/O."""
