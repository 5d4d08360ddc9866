# spawnd::sqlite3 — SQLite, linked statically into -static handler executables and dynamically everywhere else.
#
# FindSQLite3's SQLite::SQLite3 is the shared library, which a -static link rejects. A target that sets the
# property SPAWND_STATIC_LINK (spawnd_add_handler does, with SPAWND_STATIC_HANDLERS) gets libsqlite3.a plus the
# libraries it needs (-ldl -lpthread -lm) instead. The choice is made per consuming executable, so spawnd_db itself
# links only spawnd::sqlite3.
find_package(SQLite3 REQUIRED)
if(SPAWND_STATIC_HANDLERS)
  include(${CMAKE_CURRENT_LIST_DIR}/SpawndSqlite3Static.cmake)
  set(spawnd_sqlite3_for_static spawnd::sqlite3_static)
else()
  set(spawnd_sqlite3_for_static SQLite::SQLite3)
endif()
add_library(spawnd_sqlite3 INTERFACE)
add_library(spawnd::sqlite3 ALIAS spawnd_sqlite3)
target_link_libraries(spawnd_sqlite3 INTERFACE
  $<IF:$<BOOL:$<TARGET_PROPERTY:SPAWND_STATIC_LINK>>,${spawnd_sqlite3_for_static},SQLite::SQLite3>)
