"""The Textual desk. It only renders engine state (``DeskView``) and sends the engine commands."""
