#pragma once
// Rillflow speaks JSON through Boost.JSON: anything boost::json::value_from accepts can be an
// event body or a document (including structs described with BOOST_DESCRIBE_STRUCT).

#include <boost/json.hpp>

#include <string_view>

namespace rillflow {

using Json = boost::json::value;

/// Parses JSON text; malformed text is a rillflow::Error (kInvalidArgument) that says where.
Json parse_json(std::string_view text);

}  // namespace rillflow
