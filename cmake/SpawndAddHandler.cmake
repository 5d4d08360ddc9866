# cmake/SpawndAddHandler.cmake — spawnd_add_handler(), the one way a handler is built: in this repository
# (the top-level CMakeLists.txt includes it) and in a project of one's own against an installed spawnd, where
# find_package(spawnd REQUIRED) includes the installed copy (cmake/spawndConfig.cmake.in). It expects the targets
# spawnd::sdk, spawnd::sdk_main, spawnd::sdk_inproc and spawnd::warnings, and SPAWND_INPROC_VERSION_SCRIPT, the path
# of handlers/sdk/inproc.map (installed beside this file).
#
# spawnd_add_handler(<name> SOURCES <file>... [LIBRARIES <target>...] [OUTPUT_DIRECTORY <dir>] [GROUP <target>]
#                    [NO_SHARED_OBJECT])
#   Builds the handler executable ${SPAWND_CGI_BIN_DIR}/<name> (default: ${CMAKE_BINARY_DIR}/cgi-bin; no extension: the
#   file name is the URL path segment, /cgi-bin/<name>). The CMake target is handler_<name>, so that short names like
#   `env` or `kv` cannot collide with other targets; `cmake --build --preset release --target handlers` builds them all.
#   OUTPUT_DIRECTORY puts the executable elsewhere and GROUP names the aggregate target it joins instead of `handlers`:
#   the test fixtures (tests/fixtures/) use both, so that they never land in the cgi-bin `make run` serves. Every
#   handler links the SDK, and through it the db library; a handler that never calls ctx.db() still gets no SQLite code
#   (static archives) and no libsqlite3.so dependency (--as-needed).
#
#   From the same sources it also builds <name>.so beside the executable (target handler_<name>_so), the shared object
#   `spawnd --mode inproc` loads: the SDK's in-process runtime (spawnd_sdk_inproc) supplies its one exported symbol,
#   spawnd_inproc_handler_v1 (spawnd/inproc_abi.h), and the version script handlers/sdk/inproc.map
#   (SPAWND_INPROC_VERSION_SCRIPT) hides everything else. NO_SHARED_OBJECT skips it, for handlers that make no sense
#   inside the server (one that forks or crashes on purpose). The .so is made mode 644 after every link: it is not a
#   program, so CGI and fork mode, which run only executables, answer 403 for /cgi-bin/<name>.so instead of trying to
#   exec it. It links the SHARED libsqlite3, never libsqlite3.a: spawnd itself uses that library (db_keeper), and two
#   copies of SQLite in one process would each keep their own table of POSIX locks, so closing a connection in one copy
#   would drop locks the other still holds (SQLite's "multiple copies of SQLite linked into the same application"
#   corruption case).
#
# With SPAWND_STATIC_HANDLERS (default ON; the asan-ubsan and tsan presets turn it OFF; an installed spawnd keeps the
# value it was built with) the executable is linked -static: exec then maps one file and runs no dynamic loader, which
# is most of a CGI request's fixed cost. SQLite is then linked from libsqlite3.a (+ -ldl -lpthread -lm; see
# cmake/sqlite.cmake). glibc warns that static programs using dlopen() (SQLite's loadable extensions) need the same
# glibc at run time; the handlers never load extensions, so the warning is harmless.

if(NOT DEFINED SPAWND_CGI_BIN_DIR)
  set(SPAWND_CGI_BIN_DIR ${CMAKE_BINARY_DIR}/cgi-bin)
endif()

function(spawnd_add_handler name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_SHARED_OBJECT" "OUTPUT_DIRECTORY;GROUP" "SOURCES;LIBRARIES")
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "spawnd_add_handler(${name}): SOURCES is required")
  endif()
  if(NOT ARG_OUTPUT_DIRECTORY)
    set(ARG_OUTPUT_DIRECTORY ${SPAWND_CGI_BIN_DIR})
  endif()
  if(NOT ARG_GROUP)
    set(ARG_GROUP handlers)
  endif()
  if(NOT TARGET ${ARG_GROUP})
    add_custom_target(${ARG_GROUP})
  endif()
  set(target handler_${name})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE spawnd::sdk_main spawnd::sdk ${ARG_LIBRARIES} spawnd::warnings)
  # Names the handler in its log lines ("handler <name>: ...").
  target_compile_definitions(${target} PRIVATE SPAWND_HANDLER_NAME="${name}")
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${name}
    RUNTIME_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  if(SPAWND_STATIC_HANDLERS)
    target_link_options(${target} PRIVATE -static)
    set_target_properties(${target} PROPERTIES SPAWND_STATIC_LINK ON)
  else()
    # Keep libsqlite3.so out of handlers that never open a database (hello, env): nothing to load at exec.
    target_link_options(${target} PRIVATE LINKER:--as-needed)
  endif()
  add_dependencies(${ARG_GROUP} ${target})

  if(NOT ARG_NO_SHARED_OBJECT)
    set(module ${target}_so)
    set(version_script ${SPAWND_INPROC_VERSION_SCRIPT})
    add_library(${module} MODULE ${ARG_SOURCES})
    target_link_libraries(${module} PRIVATE spawnd::sdk_inproc spawnd::sdk ${ARG_LIBRARIES} spawnd::warnings)
    target_compile_definitions(${module} PRIVATE SPAWND_HANDLER_NAME="${name}")
    set_target_properties(${module} PROPERTIES
      OUTPUT_NAME ${name}
      PREFIX ""
      SUFFIX ".so"
      LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY}
      CXX_VISIBILITY_PRESET hidden
      VISIBILITY_INLINES_HIDDEN ON
      LINK_DEPENDS ${version_script})
    # -z defs: a missing symbol fails the link here, not spawnd's dlopen() at start-up.
    target_link_options(${module} PRIVATE
      LINKER:--version-script=${version_script} LINKER:-z,defs LINKER:--as-needed)
    add_custom_command(TARGET ${module} POST_BUILD COMMAND chmod 644 $<TARGET_FILE:${module}> VERBATIM)
    add_dependencies(${ARG_GROUP} ${module})
  endif()
endfunction()
