"""What tests and benchmarks share (benchmarks import it; tests never import ``bench``).

- :mod:`tests.support.squares`: coloured squares as faces (:func:`~tests.support.squares.face_png`)
  and the engine's face decoder for them;
- :mod:`tests.support.service`: quota, latency, faults, call counts and ``/_control`` as one WSGI
  middleware;
- :mod:`tests.support.rekognition`: the fake Rekognition, the local engine's API over the
  squares behind that middleware.
"""
