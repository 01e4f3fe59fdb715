#pragma once
// Filters of the document query DSL. A Predicate is a value: a tree of operators over field
// paths and JSON values. It never becomes SQL text: paths and values are bound parameters.

#include <rillflow/json.hpp>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace rillflow {

/// A condition on documents. Paths name fields with dots and array indexes: "status",
/// "profile.email", "a.b[0].c" ("" is the whole document; a backslash escapes '.', '[' or '\'
/// inside a key). Values are any JSON or anything json_from converts.
///
/// Comparisons (lt, le, gt, ge, between) compare JSON numbers numerically and JSON strings by
/// the database collation, and only match values of the same JSON type as the operand. Missing
/// fields never match a comparison, `ne` or `in`.
class Predicate {
 public:
  enum class Op {
    kEq,
    kNe,
    kLt,
    kLe,
    kGt,
    kGe,
    kBetween,
    kIn,
    kContains,
    kExists,
    kLike,
    kIlike,
    kMatch,
    kAnd,
    kOr,
    kNot
  };

  template <class V>
  static Predicate eq(std::string path, const V& value) {
    return leaf(Op::kEq, std::move(path), {json_from(value)});
  }
  template <class V>
  static Predicate ne(std::string path, const V& value) {
    return leaf(Op::kNe, std::move(path), {json_from(value)});
  }
  template <class V>
  static Predicate lt(std::string path, const V& value) {
    return leaf(Op::kLt, std::move(path), {json_from(value)});
  }
  template <class V>
  static Predicate le(std::string path, const V& value) {
    return leaf(Op::kLe, std::move(path), {json_from(value)});
  }
  template <class V>
  static Predicate gt(std::string path, const V& value) {
    return leaf(Op::kGt, std::move(path), {json_from(value)});
  }
  template <class V>
  static Predicate ge(std::string path, const V& value) {
    return leaf(Op::kGe, std::move(path), {json_from(value)});
  }
  /// low <= value <= high.
  template <class V>
  static Predicate between(std::string path, const V& low, const V& high) {
    return leaf(Op::kBetween, std::move(path), {json_from(low), json_from(high)});
  }
  /// The value at `path` equals one of `values`.
  template <class V>
  static Predicate in(std::string path, const std::vector<V>& values) {
    std::vector<Json> all;
    all.reserve(values.size());
    for (const auto& v : values) all.push_back(json_from(v));
    return leaf(Op::kIn, std::move(path), std::move(all));
  }
  static Predicate in(std::string path, std::initializer_list<Json> values) {
    return leaf(Op::kIn, std::move(path), std::vector<Json>(values));
  }
  /// JSONB containment: the value at `path` contains `value` (@>), e.g. tags contains ["vip"].
  template <class V>
  static Predicate contains(std::string path, const V& value) {
    return leaf(Op::kContains, std::move(path), {json_from(value)});
  }
  /// The field is present (a JSON null counts as present).
  static Predicate exists(std::string path) { return leaf(Op::kExists, std::move(path), {}); }
  /// SQL LIKE on the field's text (% and _ wildcards; the pattern is a bound value).
  static Predicate like(std::string path, std::string pattern) {
    return leaf(Op::kLike, std::move(path), {Json(pattern)});
  }
  static Predicate ilike(std::string path, std::string pattern) {
    return leaf(Op::kIlike, std::move(path), {Json(pattern)});
  }
  /// Full-text search: to_tsvector(config, field) @@ websearch_to_tsquery(config, query).
  /// `config` is a text search configuration name such as "simple" or "english".
  static Predicate matches(std::string path, std::string query, std::string config = "simple") {
    return leaf(Op::kMatch, std::move(path), {Json(query), Json(config)});
  }
  static Predicate and_(std::vector<Predicate> all) { return node(Op::kAnd, std::move(all)); }
  static Predicate or_(std::vector<Predicate> any) { return node(Op::kOr, std::move(any)); }
  static Predicate not_(Predicate p) { return node(Op::kNot, {std::move(p)}); }

  Op op() const noexcept { return op_; }
  const std::string& path() const noexcept { return path_; }
  const std::vector<Json>& values() const noexcept { return values_; }
  const std::vector<Predicate>& children() const noexcept { return children_; }

 private:
  static Predicate leaf(Op op, std::string path, std::vector<Json> values) {
    Predicate p;
    p.op_ = op;
    p.path_ = std::move(path);
    p.values_ = std::move(values);
    return p;
  }
  static Predicate node(Op op, std::vector<Predicate> children) {
    Predicate p;
    p.op_ = op;
    p.children_ = std::move(children);
    return p;
  }

  Op op_ = Op::kAnd;
  std::string path_;
  std::vector<Json> values_;
  std::vector<Predicate> children_;
};

inline Predicate operator&&(Predicate a, Predicate b) {
  return Predicate::and_({std::move(a), std::move(b)});
}
inline Predicate operator||(Predicate a, Predicate b) {
  return Predicate::or_({std::move(a), std::move(b)});
}
inline Predicate operator!(Predicate p) {
  return Predicate::not_(std::move(p));
}

}  // namespace rillflow
