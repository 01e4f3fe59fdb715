#pragma once
// Everything of Rillflow's public API in one include.

#include <rillflow/embedded/embedded_postgres.hpp>
#include <rillflow/error.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/events/event_store.hpp>
#include <rillflow/json.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/projections/projection_handler.hpp>
#include <rillflow/projections/transaction.hpp>
#include <rillflow/schema/schema_manager.hpp>
#include <rillflow/store.hpp>
#include <rillflow/uuid.hpp>
#include <rillflow/version.hpp>
