"""The feature store: features defined once, reused for training and serving.

- :func:`register_feature_view` — a table of feature values by entity key and time, from a
  DataFrame or a Parquet/CSV file, versioned by content (:mod:`.views`);
- :func:`get_historical_features` — point-in-time correct training sets: each entity row
  gets the values known at its time, never later ones (:mod:`.retrieval`);
- :func:`materialize` and :func:`get_online_features` — the latest values per entity in
  the workspace's database, for serving (:mod:`.online`).

Everything lives in the workspace: the views' rows as Parquet artifacts, their
definitions, versions and the online store in its database (``store.features``).
"""

from .online import Materialization, feature_view_status, get_online_features, materialize
from .retrieval import get_historical_features, parse_features
from .views import (
    FeatureView,
    feature_view_versions,
    format_ttl,
    get_feature_view,
    list_feature_views,
    parse_ttl,
    register_feature_view,
)

__all__ = ["FeatureView", "Materialization", "feature_view_status", "feature_view_versions",
           "format_ttl", "get_feature_view",
           "get_historical_features", "get_online_features", "list_feature_views", "materialize",
           "parse_features", "parse_ttl", "register_feature_view"]
