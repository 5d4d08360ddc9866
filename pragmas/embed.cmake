# pragmas/embed.cmake — run with `cmake -P` at build time: embeds the preset .sql files as C++ string literals.
#
#   cmake -DSOURCE_DIR=<dir with NAME.sql> -DNAMES=default,durable,baseline -DOUTPUT=<file.cpp> -P embed.cmake
#
# Writes OUTPUT from presets_embedded.cpp.in: a constant-initialised table of {name, text} (raw string literals), so
# nothing runs at static-initialisation time. Uses nothing but CMake.
string(REPLACE "," ";" names "${NAMES}")
set(SPAWND_PRESET_ENTRIES "")
set(SPAWND_PRESET_NAME_LIST "")
foreach(name IN LISTS names)
  file(READ "${SOURCE_DIR}/${name}.sql" text)
  # The raw-string delimiter must not occur in the text, or the literal would end early.
  string(FIND "${text}" ")spawnd_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name}.sql contains the delimiter )spawnd_sql\"")
  endif()
  string(APPEND SPAWND_PRESET_ENTRIES "    {\"${name}\", R\"spawnd_sql(${text})spawnd_sql\"},\n")
  string(APPEND SPAWND_PRESET_NAME_LIST "    \"${name}\",\n")
endforeach()
configure_file("${CMAKE_CURRENT_LIST_DIR}/presets_embedded.cpp.in" "${OUTPUT}" @ONLY)
