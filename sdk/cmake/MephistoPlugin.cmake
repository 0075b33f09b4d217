# mephisto_add_plugin(<name> SOURCES <files>... [OUTPUT_DIRECTORY <dir>] [LINK <targets>...])
#
# Builds <name>.so, a Mephisto plugin, as a MODULE library with the flags hot reload depends on:
#  - hidden visibility: only the entry symbol (MPH_EXPORT) is exported, so two versions of a plugin never
#    resolve each other's symbols;
#  - -fno-gnu-unique: without it GCC marks inline statics and template statics of C++ code as
#    STB_GNU_UNIQUE, and glibc then silently refuses to unload the image on dlclose;
#  - no lib prefix: plugins.d/<name>.so is what YAML's `plugin: <name>` refers to.
function(mephisto_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "mephisto_add_plugin(${name}): SOURCES is required")
  endif()
  if(NOT ARG_OUTPUT_DIRECTORY)
    if(DEFINED MEPHISTO_PLUGIN_OUTPUT_DIR)
      set(ARG_OUTPUT_DIRECTORY "${MEPHISTO_PLUGIN_OUTPUT_DIR}")
    else()
      set(ARG_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/plugins")
    endif()
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE mephisto::sdk ${ARG_LINK})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  target_compile_options(${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  # Undefined symbols are load-time errors the host would report; catch them at link time instead.
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
endfunction()
