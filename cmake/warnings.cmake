# spawnd_warnings: the curated warning list, linked PRIVATE into every target of ours (never into llhttp).
add_library(spawnd_warnings INTERFACE)
add_library(spawnd::warnings ALIAS spawnd_warnings)
# Installed with the SDK (cmake/install.cmake): handlers built against an installed spawnd get the same list, without
# -Werror.
target_compile_options(spawnd_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough -Wold-style-cast)
if(SPAWND_WERROR)
  target_compile_options(spawnd_warnings INTERFACE $<BUILD_INTERFACE:-Werror>)
endif()
