# Turns storage/migrations/V<version>__<name>.sql into a C++ source with one raw string literal per
# file, ordered by version, so the gateway binary carries its own schema (no files to deploy).
# Run in script mode:
#   cmake -DLIST_FILE=<file with one .sql path per line> -DOUTPUT=<generated .cpp> -P embed_migrations.cmake
cmake_minimum_required(VERSION 3.25)

if(NOT LIST_FILE OR NOT OUTPUT)
  message(FATAL_ERROR "embed_migrations.cmake needs -DLIST_FILE=... and -DOUTPUT=...")
endif()

file(STRINGS "${LIST_FILE}" files)
list(FILTER files EXCLUDE REGEX "^[ \t]*$")
if(NOT files)
  message(FATAL_ERROR "no storage/migrations/V*.sql files found")
endif()

# Pair each file with its numeric version, then sort numerically (V2 before V10).
set(keyed "")
foreach(path IN LISTS files)
  get_filename_component(file_name "${path}" NAME)
  if(NOT file_name MATCHES "^V([0-9]+)__([A-Za-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "migration ${file_name}: name must look like V001__short_name.sql")
  endif()
  set(name "${CMAKE_MATCH_2}")
  string(REGEX REPLACE "^0+([0-9])" "\\1" version "${CMAKE_MATCH_1}")
  string(LENGTH "${version}" digits)
  if(digits GREATER 9)
    message(FATAL_ERROR "migration ${file_name}: version does not fit in an int")
  endif()
  set(padded "000000000${version}")
  string(LENGTH "${padded}" padded_len)
  math(EXPR start "${padded_len} - 9")
  string(SUBSTRING "${padded}" ${start} 9 padded)
  list(APPEND keyed "${padded}|${version}|${name}|${path}")
endforeach()
list(SORT keyed)

set(delimiter "llmgw_sql")
set(body "")
set(previous "")
foreach(entry IN LISTS keyed)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 1 version)
  list(GET parts 2 name)
  list(GET parts 3 path)
  if(version STREQUAL previous)
    message(FATAL_ERROR "two migrations share version ${version}")
  endif()
  set(previous "${version}")
  file(READ "${path}" sql)
  string(FIND "${sql}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw-string delimiter )${delimiter}\"")
  endif()
  string(APPEND body "    {${version}, \"${name}\", R\"${delimiter}(${sql})${delimiter}\"},\n")
endforeach()

set(content "// Generated from storage/migrations/V*.sql by storage/embed_migrations.cmake. Do not edit.
#include \"storage/migrations.hpp\"

namespace storage::detail {
namespace {

constexpr Migration kMigrations[] = {
${body}};

}  // namespace

std::span<const Migration> embedded_migrations() noexcept { return kMigrations; }

}  // namespace storage::detail
")

# Only touch the output when it changes, so an unrelated re-run does not force a rebuild.
file(WRITE "${OUTPUT}.tmp" "${content}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
