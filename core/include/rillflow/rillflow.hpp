#pragma once
// Everything of Rillflow's public API in one include.

#include <rillflow/aggregates/aggregate.hpp>
#include <rillflow/aggregates/aggregate_repository.hpp>
#include <rillflow/docs/compiled_query.hpp>
#include <rillflow/docs/document_collection.hpp>
#include <rillflow/docs/document_query_context.hpp>
#include <rillflow/docs/document_store.hpp>
#include <rillflow/docs/index_advisor.hpp>
#include <rillflow/docs/predicate.hpp>
#include <rillflow/docs/query.hpp>
#include <rillflow/docs/session.hpp>
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
