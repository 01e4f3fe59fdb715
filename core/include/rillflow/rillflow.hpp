#pragma once
// Everything of Rillflow's public API in one include.

#include <rillflow/aggregates/aggregate.hpp>
#include <rillflow/aggregates/aggregate_repository.hpp>
#include <rillflow/documents/compiled_query.hpp>
#include <rillflow/documents/document_collection.hpp>
#include <rillflow/documents/document_query_context.hpp>
#include <rillflow/documents/document_store.hpp>
#include <rillflow/documents/index_advisor.hpp>
#include <rillflow/documents/predicate.hpp>
#include <rillflow/documents/query.hpp>
#include <rillflow/documents/session.hpp>
#include <rillflow/embedded/embedded_postgres.hpp>
#include <rillflow/error.hpp>
#include <rillflow/events/event.hpp>
#include <rillflow/events/event_store.hpp>
#include <rillflow/events/notify.hpp>
#include <rillflow/json.hpp>
#include <rillflow/projections/projection_daemon.hpp>
#include <rillflow/projections/projection_handler.hpp>
#include <rillflow/projections/transaction.hpp>
#include <rillflow/redact.hpp>
#include <rillflow/schema/schema_manager.hpp>
#include <rillflow/store.hpp>
#include <rillflow/uuid.hpp>
#include <rillflow/version.hpp>
