# llhttp is not packaged as a library on Debian: node-llhttp ships its C sources and header,
# which we build as a static library. It is third-party code, so it gets no spawnd warnings.
set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "Directory with llhttp's api.c, http.c and llhttp.c")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "Directory with llhttp.h")
if(NOT EXISTS ${LLHTTP_SOURCE_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INCLUDE_DIR}/llhttp.h)
  message(FATAL_ERROR "llhttp sources not found in ${LLHTTP_SOURCE_DIR}; run scripts/install-deps.sh (package node-llhttp)")
endif()
add_library(llhttp STATIC
  ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${LLHTTP_SOURCE_DIR}/llhttp.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON)
add_library(llhttp::llhttp ALIAS llhttp)
