#pragma once
// A small expected-like type: the value, or an Error that carries the code, a message safe to show
// to the client, and the offending parameter (OpenAI's "param"). No exceptions for expected failures.
#include "core/error.hpp"

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace core {

struct Error {
  errc code = errc::internal;
  std::string message;  // shown to the client: never SQL, hostnames, secrets
  std::string param;    // empty -> null

  Error() = default;
  Error(errc c, std::string msg = {}, std::string prm = {})
      : code(c), message(std::move(msg)), param(std::move(prm)) {}
};

template <class T>
class [[nodiscard]] Result {
 public:
  // Default: an internal error (Asio needs default-constructible completion values).
  Result() : v_(std::in_place_index<1>, Error{errc::internal}) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT
  Result(errc code) : v_(std::in_place_index<1>, Error{code}) {}     // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>
struct Unit {};
using Status = Result<Unit>;
inline Status ok() {
  return Unit{};
}

// A result's success or its error, without its value.
template <class T>
Status status_of(const Result<T>& r) {
  if (r) return ok();
  return r.error();
}

}  // namespace core
