# cmake/install.cmake — what `cmake --install` installs and how `cpack -G DEB` packages it. Included last by the
# top-level CMakeLists.txt. Paths below are relative to the install prefix (/usr in the Debian package):
#
#   bin/spawnd, bin/spawnd-bench
#   libexec/spawnd/cgi-bin/         the example handlers (hello, env, guestbook, kv: executables and NAME.so)
#   include/spawnd/                 the SDK's public headers, with db/ and pragmas/ (reached as "db/database.h")
#   lib/ (CMAKE_INSTALL_LIBDIR)     the SDK's static libraries (sdk, sdk_main, db, pragmas, common) and, in
#                                   lib/spawnd/objects/, the in-process runtime's object file
#   lib/cmake/spawnd/               the CMake package: spawndConfig.cmake, spawnd_add_handler(), inproc.map
#   share/man/man1/spawnd.1         generated from `spawnd --help` by help2man (packaging/spawnd.h2m adds sections)
#   lib/systemd/system/             spawnd.service, spawnd.socket, spawnd-https.socket (packaging/systemd/)
#   etc/spawnd/spawnd.toml          the example configuration, and etc/logrotate.d/spawnd, the access log's rotation;
#                                   in /etc with the prefix /usr (the FHS place); never overwritten when they exist
#                                   (the Debian package marks them conffiles instead)
include(CMakePackageConfigHelpers)

set(SPAWND_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/spawnd)
set(SPAWND_INSTALL_CGI_BIN ${CMAKE_INSTALL_LIBEXECDIR}/spawnd/cgi-bin)

install(TARGETS spawnd spawnd-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The example handlers. The .so stays mode 644 as in the build tree: it is not a program (cgi and fork mode answer 403
# for it instead of trying to exec it).
foreach(name IN ITEMS hello env guestbook kv)
  install(TARGETS handler_${name} RUNTIME DESTINATION ${SPAWND_INSTALL_CGI_BIN})
  install(TARGETS handler_${name}_so LIBRARY DESTINATION ${SPAWND_INSTALL_CGI_BIN}
          PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

# The SDK: its libraries as the CMake package's targets spawnd::<EXPORT_NAME>, and its headers.
set(sdk_targets spawnd_sdk spawnd_sdk_main spawnd_sdk_inproc spawnd_db spawnd_pragmas spawnd_common spawnd_sqlite3
    spawnd_warnings)
foreach(target IN LISTS sdk_targets)
  string(REGEX REPLACE "^spawnd_" "" export_name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
endforeach()
install(TARGETS ${sdk_targets} EXPORT spawndTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        OBJECTS DESTINATION ${CMAKE_INSTALL_LIBDIR}/spawnd/objects)
install(EXPORT spawndTargets NAMESPACE spawnd:: DESTINATION ${SPAWND_INSTALL_CMAKEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/handlers/sdk/include/spawnd DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/db/database.h ${PROJECT_SOURCE_DIR}/db/db_error.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/spawnd/db)
install(FILES ${PROJECT_SOURCE_DIR}/pragmas/presets.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/spawnd/pragmas)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/spawndConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/spawndConfig.cmake
                              INSTALL_DESTINATION ${SPAWND_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/spawndConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/spawndConfig.cmake ${CMAKE_BINARY_DIR}/spawndConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/SpawndAddHandler.cmake ${CMAKE_CURRENT_LIST_DIR}/SpawndSqlite3Static.cmake
              ${SPAWND_INPROC_VERSION_SCRIPT}
        DESTINATION ${SPAWND_INSTALL_CMAKEDIR})

# The man page, from `spawnd --help` (help2man, Debian's help2man package: a build dependency).
find_program(HELP2MAN help2man REQUIRED DOC "help2man generates spawnd.1 from spawnd --help (Debian: help2man)")
set(man_page ${CMAKE_BINARY_DIR}/spawnd.1)
add_custom_command(
  OUTPUT ${man_page}
  COMMAND ${HELP2MAN} --locale=C.UTF-8 --no-info --no-discard-stderr --section 1
          --name "a small web server that runs a fresh process per dynamic request"
          --version-string "spawnd ${PROJECT_VERSION}"
          --include ${PROJECT_SOURCE_DIR}/packaging/spawnd.h2m
          --output ${man_page} $<TARGET_FILE:spawnd>
  DEPENDS spawnd ${PROJECT_SOURCE_DIR}/packaging/spawnd.h2m
  COMMENT "Generating spawnd.1 from spawnd --help (help2man)"
  VERBATIM)
add_custom_target(man_page ALL DEPENDS ${man_page})
install(FILES ${man_page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

install(FILES ${PROJECT_SOURCE_DIR}/packaging/systemd/spawnd.service
              ${PROJECT_SOURCE_DIR}/packaging/systemd/spawnd.socket
              ${PROJECT_SOURCE_DIR}/packaging/systemd/spawnd-https.socket
        DESTINATION lib/systemd/system)

# The configuration files: where is decided at install time, when the prefix is known (cpack installs with /usr).
install(CODE "set(spawnd_source_dir \"${PROJECT_SOURCE_DIR}\")")
install(CODE [[
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(etc "/etc")
  endif()
  foreach(file IN ITEMS "spawnd.toml:spawnd" "logrotate/spawnd:logrotate.d")
    string(REPLACE ":" ";" file "${file}")
    list(GET file 0 source)
    list(GET file 1 directory)
    get_filename_component(name "${source}" NAME)
    if(EXISTS "$ENV{DESTDIR}${etc}/${directory}/${name}")
      message(STATUS "Keeping: $ENV{DESTDIR}${etc}/${directory}/${name}")
    else()
      file(INSTALL "${spawnd_source_dir}/packaging/${source}" DESTINATION "${etc}/${directory}"
           PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    endif()
  endforeach()
]])

# ---- cpack -G DEB ----
set(CPACK_PACKAGE_NAME spawnd)
set(CPACK_PACKAGE_VENDOR "spawnd")
set(CPACK_PACKAGE_CONTACT "spawnd maintainers <spawnd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "small web server that runs a fresh process per dynamic request")
string(CONCAT CPACK_PACKAGE_DESCRIPTION
    "spawnd serves static files from an epoll front end and runs each dynamic request as a fresh process (CGI, RFC "
    "3875), from a warm fork server, as a FastCGI worker or in-process, with handlers keeping their data in SQLite. "
    "This package holds spawnd, spawnd-bench, the example handlers, the handler SDK (headers, static libraries and a "
    "CMake package), the man page, an example configuration and systemd units.")
# Installed with DESTDIR and the package's real prefix, /usr, so that install(CODE) above sees /usr and puts the
# configuration in /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # spawnd_0.1.0_amd64.deb
# Executables and shared objects without their debug info (the static libraries keep theirs).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: what dpkg-shlibdeps finds for the ELF files (libc6, libstdc++6, libsqlite3-0, libsystemd0, ...), plus
# adduser for postinst's system user. Recommends: wrk, which spawnd-bench drives; the SDK's build needs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "wrk")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libsqlite3-dev, nlohmann-json3-dev, cmake, g++")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
