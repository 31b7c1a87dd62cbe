"""The domain core: pure functions and models. No I/O, no Textual, no clock reads."""
