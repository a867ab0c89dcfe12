# TESSERA_STATIC_AGENT: the tessera-agent binary linked against the static archives of gRPC,
# protobuf, abseil, re2, c-ares and upb instead of their shared libraries (issue 7, memory).
#
# Why: the agent runs on every node, usually without anything else that uses these libraries, so
# it pays alone for every page of them it maps. Dynamically linked, it maps their whole symbol
# tables and relocation sections (about 2.5 MiB) and pages of code it never runs; statically
# linked, only the archive members it references come in (measured on the footprint bench:
# 3.4 MiB less RSS idle, 2.8 MiB less with 1,000 SVIDs). OpenSSL stays shared: cpp-httplib
# (the health endpoint) and libcurl (trust_bundle_url) load libssl/libcrypto anyway, and a
# second, static copy would be bound to by their references to it.
#
# Only this one binary is linked differently (tests, the server and the CLI tools keep the
# shared libraries, which link faster): CMake links imported libraries by their full paths, so a
# linker launcher, this file run as a script, rewrites that one link command. It swaps each
# shared library named in kTesseraStaticLibs for the archive beside it, in the same place on the
# command line (after everything that uses it), and groups the archives since they refer to
# each other. The test agent.loaded_libraries checks the result with ldd.
#
# Included from agent/CMakeLists.txt: tessera_link_static_deps(target). Run by the link:
#   cmake -P TesseraStaticAgent.cmake -- <linker> <arguments...>

# Base names (lib<name>.so -> lib<name>.a), as a regular expression.
set(kTesseraStaticLibs "grpc\\+\\+|grpc|gpr|upb|address_sorting|cares|re2|protobuf|absl_[a-z0-9_]+")

if(NOT CMAKE_SCRIPT_MODE_FILE)
  # tessera_link_static_deps(target): link `target` as described above.
  function(tessera_link_static_deps target)
    foreach(lib grpc++ grpc gpr upb address_sorting cares re2 protobuf absl_base)
      find_library(TESSERA_STATIC_${lib} NAMES lib${lib}.a)
      if(NOT TESSERA_STATIC_${lib})
        message(FATAL_ERROR "TESSERA_STATIC_AGENT: no lib${lib}.a (Debian: the -dev packages "
                            "ship them); configure with -DTESSERA_STATIC_AGENT=OFF")
      endif()
    endforeach()
    set_property(TARGET ${target} PROPERTY CXX_LINKER_LAUNCHER
                 ${CMAKE_COMMAND} -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE} --)
    # Sections of the archives' members that nothing references.
    target_link_options(${target} PRIVATE LINKER:--gc-sections)
  endfunction()
  return()
endif()

# --- Script mode: the linker launcher ------------------------------------------------------
set(command)
set(seen_separator FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  set(arg "${CMAKE_ARGV${i}}")
  if(seen_separator)
    list(APPEND command "${arg}")
  elseif(arg STREQUAL "--")
    set(seen_separator TRUE)
  endif()
endforeach()
if(NOT command)
  message(FATAL_ERROR "TesseraStaticAgent.cmake: no link command after --")
endif()

set(rewritten)
set(first -1)
set(last_swapped -1)
set(index 0)
foreach(arg IN LISTS command)
  set(swapped "")
  if(arg MATCHES "^(.*/)lib(${kTesseraStaticLibs})\\.so(\\.[0-9.]+)?$")
    set(swapped "${CMAKE_MATCH_1}lib${CMAKE_MATCH_2}.a")
    if(NOT EXISTS "${swapped}")
      message(FATAL_ERROR "TesseraStaticAgent.cmake: ${arg} has no static archive ${swapped}")
    endif()
  elseif(arg MATCHES "^-l(${kTesseraStaticLibs})$")
    set(swapped "-l:lib${CMAKE_MATCH_1}.a")
  endif()
  if(swapped STREQUAL "")
    list(APPEND rewritten "${arg}")
  else()
    list(APPEND rewritten "${swapped}")
    if(first EQUAL -1)
      set(first ${index})
    endif()
    set(last_swapped ${index})
  endif()
  math(EXPR index "${index} + 1")
endforeach()
if(first EQUAL -1)
  message(FATAL_ERROR "TesseraStaticAgent.cmake: no gRPC/protobuf/abseil library in the link "
                      "command; nothing to link statically")
endif()
# End marker first, so that `first` still points where it should.
math(EXPR after_last "${last_swapped} + 1")
list(LENGTH rewritten length)
if(after_last EQUAL length)
  list(APPEND rewritten "-Wl,--end-group")
else()
  list(INSERT rewritten ${after_last} "-Wl,--end-group")
endif()
list(INSERT rewritten ${first} "-Wl,--start-group")

execute_process(COMMAND ${rewritten} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "link failed (${result}): ${rewritten}")
endif()
