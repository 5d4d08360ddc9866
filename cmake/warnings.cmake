# spawnd_warnings: the curated warning list, linked PRIVATE into every target of ours (never into llhttp).
add_library(spawnd_warnings INTERFACE)
target_compile_options(spawnd_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
  -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough -Wold-style-cast)
if(SPAWND_WERROR)
  target_compile_options(spawnd_warnings INTERFACE -Werror)
endif()
