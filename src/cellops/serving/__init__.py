"""Model serving: the scoring server's parts, batch scoring and the prediction log.

- :mod:`.payloads` turns MLflow scoring requests and Open Inference Protocol v2 tensors
  into model inputs checked against the signature;
- :mod:`.model` loads the model a server answers with and follows an alias;
- :mod:`.predlog` is the bounded, batched prediction log; :mod:`.history` reads it back
  (:func:`predictions`) and joins labels (:func:`log_labels`);
- :mod:`.batch` scores files chunk by chunk (:func:`predict_file`);
- :mod:`.endpoints` lets running servers announce themselves (:func:`serving_endpoints`).

The HTTP server itself (Starlette on uvicorn) is a front end over these:
:mod:`cellops.serving.http`, reached as :func:`cellops.serve` and ``cellops serve``.
"""

from .batch import BatchResult, predict_file
from .endpoints import Endpoint, EndpointBeacon, serving_endpoints
from .history import log_labels, predictions
from .model import (
    PREDICT_METHODS,
    ModelHolder,
    ServedModel,
    load_served,
    quiet_feature_names,
)
from .payloads import (
    OIP_DATATYPES,
    Inputs,
    PayloadError,
    Signature,
    mlflow_inputs,
    oip_datatype,
    oip_inputs,
    oip_outputs,
    parse_json,
)
from .predlog import LogEntry, PredictionLog, new_request_id

__all__ = ["BatchResult", "Endpoint", "EndpointBeacon", "Inputs", "LogEntry", "ModelHolder",
           "OIP_DATATYPES", "PREDICT_METHODS", "PayloadError", "PredictionLog", "ServedModel",
           "Signature", "load_served", "log_labels", "mlflow_inputs", "new_request_id",
           "oip_datatype", "oip_inputs", "oip_outputs", "parse_json", "predict_file", "predictions",
           "quiet_feature_names", "serving_endpoints"]
