"""The Open Inference Protocol (KServe V2 inference protocol) over the one use case.

The routes (:mod:`app.api.routes.inference_protocol`) only translate: :mod:`.codec` turns a
request's JSON header and binary section into an :class:`~.codec.ImageFiles` or
:class:`~.codec.ModelInputs` tensor and the class probabilities back into the requested output
tensors; :class:`~app.classification.DigitClassifier` does the work, as it does for
``POST /predict``. :mod:`.schemas` documents the messages and validates the JSON header;
:mod:`.errors` holds the protocol's own errors.
"""
