"""The desk's widgets, one a file; ``base`` holds what they share (the palette, the content panel).
Import a widget from its own module.
"""
