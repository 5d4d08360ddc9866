# cmake/SpawndSqlite3Static.cmake — spawnd::sqlite3_static: libsqlite3.a (Debian: libsqlite3-dev) plus the libraries
# it needs (-ldl -lpthread -lm), for -static handler executables. Included by cmake/sqlite.cmake and, installed, by
# spawndConfig.cmake: the exported spawnd::sqlite3 names this target for handlers linked -static.
if(NOT TARGET spawnd::sqlite3_static)
  find_package(SQLite3 REQUIRED)
  find_library(SPAWND_SQLITE3_STATIC_LIBRARY NAMES libsqlite3.a REQUIRED
    DOC "Static SQLite for -static handler executables (Debian: libsqlite3-dev)")
  find_package(Threads REQUIRED)
  add_library(spawnd::sqlite3_static STATIC IMPORTED)
  set_target_properties(spawnd::sqlite3_static PROPERTIES
    IMPORTED_LOCATION ${SPAWND_SQLITE3_STATIC_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES "${SQLite3_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "${CMAKE_DL_LIBS};Threads::Threads;m")
endif()
