# Proposed for the top-level CMakeLists.txt (after find_package(absl)); try it without editing
# that file with -DCMAKE_PROJECT_INCLUDE=bench/static-absl.cmake.
#
# Links abseil's static archives (libabsl-dev ships a PIC .a next to every .so) instead of
# its ~45 shared libraries, and libstdc++/libgcc statically into the executables: each
# shared library costs its process ~20-120 KiB of resident pages (headers, relocated data,
# GOT) whatever the program uses of it, so this is most of the CLI's and execd's fixed RSS.
find_package(absl REQUIRED)
get_directory_property(_tcpstates_imported IMPORTED_TARGETS)
foreach(_target IN LISTS _tcpstates_imported)
  if(NOT _target MATCHES "^absl::")
    continue()
  endif()
  get_target_property(_type ${_target} TYPE)
  if(NOT _type STREQUAL "SHARED_LIBRARY")
    continue()
  endif()
  get_target_property(_configs ${_target} IMPORTED_CONFIGURATIONS)
  foreach(_config IN LISTS _configs)
    get_target_property(_location ${_target} IMPORTED_LOCATION_${_config})
    string(REGEX REPLACE "\\.so[.0-9]*$" ".a" _static "${_location}")
    if(EXISTS "${_static}")
      set_target_properties(${_target} PROPERTIES IMPORTED_LOCATION_${_config} "${_static}"
                                                  IMPORTED_SONAME_${_config} "")
    endif()
  endforeach()
endforeach()
# Executables only: a dlopen()ed plugin (collectd's tcpstates.so) keeps the shared libstdc++
# the daemon may already have loaded.
set(CMAKE_EXE_LINKER_FLAGS "${CMAKE_EXE_LINKER_FLAGS} -static-libstdc++ -static-libgcc -Wl,--gc-sections")
add_compile_options(-ffunction-sections -fdata-sections)
