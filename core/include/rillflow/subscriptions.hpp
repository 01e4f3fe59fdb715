#pragma once
// Subscriptions and consumer groups (see subscriptions/subscriptions.hpp).
#include <rillflow/subscriptions/subscriptions.hpp>
