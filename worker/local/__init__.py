"""The local stack (the `local` extra): the face engine, the embedded AWS, the demo."""
