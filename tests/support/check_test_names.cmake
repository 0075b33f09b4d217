# ctest splits test names at ';' (doctest_discover_tests registers each TEST_CASE by name): a TEST_CASE named
# "a; b" would run a filter that matches nothing, and pass without running. Refuse such names.
file(GLOB_RECURSE sources "${ROOT}/tests/*.cpp")
set(bad "")
foreach(source ${sources})
  file(STRINGS "${source}" lines REGEX "TEST_CASE\\(\"[^\"]*\\;")
  foreach(line ${lines})
    string(APPEND bad "\n  ${source}: ${line}")
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "test names must not contain ';' (ctest would skip them silently):${bad}")
endif()
