# Helpers every folder uses to declare its library, tests and fuzz targets the same way.

# Warnings for our own code (generated code is compiled without them).
function(tessera_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(TESSERA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# In the sanitizer build (CI), a test's own source is compiled unoptimized and without the fuzzers'
# coverage instrumentation: it is glue around the libraries under test, which keep the build's
# optimization and every instrumentation. That builds each test a third faster (measured on
# server/api/entry_service_test.cc: 20.5 -> 12.3 s), and the test binaries are most of the build.
function(tessera_light_test_code target)
  get_target_property(options ${target} COMPILE_OPTIONS)
  list(REMOVE_ITEM options -fsanitize=fuzzer-no-link)
  list(APPEND options -O0)
  set_property(TARGET ${target} PROPERTY COMPILE_OPTIONS ${options})
endfunction()

# tessera_library(name SRCS a.cc b.cc DEPS x y): one static library per folder.
function(tessera_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  if(NOT ARG_SRCS)  # header-only so far
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  tessera_warnings(${name})
endfunction()

# tessera_test(name SRCS a_test.cc DEPS lib): a GoogleTest binary; each test case is a CTest test.
function(tessera_test name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    TESSERA_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/tests/testdata")
  tessera_warnings(${name})
  if(TESSERA_SANITIZE)
    tessera_light_test_code(${name})
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS unit)
endfunction()

# tessera_fuzzer(name SRCS f.cc DEPS lib): a libFuzzer target, run for TESSERA_FUZZ_SECONDS as a
# test, starting from the seed corpus in tests/fuzz/corpus/<name> when it exists.
function(tessera_fuzzer name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  if(NOT TESSERA_FUZZ)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  tessera_warnings(${name})
  set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
  set(seeds)
  if(EXISTS ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
    set(seeds ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
  endif()
  add_test(NAME fuzz.${name}
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                   $<TARGET_FILE:${name}> -max_total_time=${TESSERA_FUZZ_SECONDS}
                   -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 ${corpus} ${seeds})
  # COST: start the fuzzers early (they run TESSERA_FUZZ_SECONDS each) even without timing history.
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz COST 500
                       TIMEOUT 300
                       FIXTURES_REQUIRED fuzz.${name}.corpus)
  add_test(NAME fuzz.${name}.mkcorpus COMMAND ${CMAKE_COMMAND} -E make_directory ${corpus})
  set_tests_properties(fuzz.${name}.mkcorpus PROPERTIES FIXTURES_SETUP fuzz.${name}.corpus)
endfunction()

# tessera_folder(name DEPS ... TEST_DEPS ...): the folder's library is every .cc in it that is
# not a test or fuzz target; every *_test.cc beside it becomes its own test binary.
function(tessera_folder name)
  cmake_parse_arguments(ARG "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB all_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  set(lib_srcs)
  set(test_srcs)
  foreach(src ${all_srcs})
    if(src MATCHES "_test\\.cc$")
      list(APPEND test_srcs ${src})
    elseif(NOT src MATCHES "(_fuzz|/main)\\.cc$")
      list(APPEND lib_srcs ${src})
    endif()
  endforeach()
  tessera_library(${name} SRCS ${lib_srcs} DEPS ${ARG_DEPS})
  foreach(src ${test_srcs})
    get_filename_component(test_name ${src} NAME_WE)
    tessera_test(${name}_${test_name} SRCS ${src} DEPS ${name} ${ARG_TEST_DEPS})
  endforeach()
endfunction()
