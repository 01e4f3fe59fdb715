// order_folder: the aggregate folder plugin of the example Order aggregate, for the snapshotter
// (`snapshotters:` in rillflowd.yaml, `rillflow snapshots compact-once --config ...`). The same
// AggregateFolder an application would hand to rillflow::Snapshotter in process.
#include "order.hpp"

#include <rillflow/plugin/plugin_api.hpp>

RILLFLOW_FOLDER_PLUGIN(rillflow::AggregateFolder<example::Order>, "order", "1.0.0")
