# Static abseil (and libstdc++/libgcc) for the installed programs, shared for everything else.
#
# Why: each shared library costs a process ~20-120 KiB of resident pages (headers, relocated
# data, GOT) whatever it uses of it. With abseil's ~45 .so plus libstdc++ that was most of the
# programs' fixed 5.1 MiB peak RSS; linking libabsl-dev's static archives (a PIC .a next to
# every .so), libstdc++ and libgcc statically, with section GC, brings it to ~3 MiB
# (docs/BENCHMARKS.md, "Fixed memory").
#
# Why not swap the imported locations globally: the collectd plugin tcpstates.so is a shared
# object and cannot link the archives (libabsl_cordz_functions.a uses local-exec TLS:
# R_X86_64_TPOFF32), and it should share the daemon's libstdc++ anyway. The libraries we link
# into both (tcpstates_core, ...) must therefore reach abseil one way or the other depending on
# the *final* target being linked. Hence three namespaces:
#
#   absl::X                   Debian's imported targets, untouched (shared). Tests, benchmarks
#                             and the fuzzers link these directly.
#   tcpstates_absl_static::X  a twin of each, locations swapped for the .a archives, its
#                             dependencies rewritten to the twins.
#   tcpstates_absl::X         what our libraries link: resolves, per linked target, to the
#                             static twin when that target opted in with
#                             tcpstates_static_runtime() and to absl::X otherwise. (In usage
#                             requirements $<TARGET_PROPERTY:p> reads the target being linked.)
#
# An opted-in program must reach abseil only through tcpstates_absl:: (a direct absl::X would
# load a second, shared copy next to the static one); tests/CMakeLists.txt checks with ldd.
#
# Off under sanitizers and fuzzing: a static libstdc++ next to the ASan runtime's interceptors
# is asking for trouble, and those builds are not about RSS. There, tcpstates_absl::X is absl::X.

option(TCPSTATES_STATIC_ABSEIL
       "Link the installed programs with static abseil, libstdc++ and libgcc (smaller RSS)" ON)
if(TCPSTATES_STATIC_ABSEIL AND (TCPSTATES_SANITIZE OR TCPSTATES_FUZZ))
  message(STATUS "TCPSTATES_STATIC_ABSEIL ignored: sanitizer/fuzz build links abseil shared")
  set(TCPSTATES_STATIC_ABSEIL OFF)  # a normal variable shadowing the cache entry, this run only
endif()

# A function for its local variables; the imported targets it creates are the directory's.
function(_tcpstates_absl_targets)
  get_directory_property(imported IMPORTED_TARGETS)
  list(FILTER imported INCLUDE REGEX "^absl::")
  if(NOT imported)
    message(FATAL_ERROR "cmake/StaticAbseil.cmake must be included right after find_package(absl)")
  endif()

  foreach(target IN LISTS imported)
    string(REGEX REPLACE "^absl::" "" name "${target}")
    add_library(tcpstates_absl::${name} INTERFACE IMPORTED)
    if(NOT TCPSTATES_STATIC_ABSEIL)
      set_target_properties(tcpstates_absl::${name} PROPERTIES INTERFACE_LINK_LIBRARIES ${target})
      continue()
    endif()

    set(twin tcpstates_absl_static::${name})
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "SHARED_LIBRARY")
      add_library(${twin} STATIC IMPORTED)
      get_target_property(configs ${target} IMPORTED_CONFIGURATIONS)
      set_target_properties(${twin} PROPERTIES IMPORTED_CONFIGURATIONS "${configs}")
      foreach(config IN LISTS configs)
        get_target_property(location ${target} IMPORTED_LOCATION_${config})
        string(REGEX REPLACE "\\.so[.0-9]*$" ".a" archive "${location}")
        if(NOT EXISTS "${archive}")
          # Silently falling back to the .so would mix static and shared copies of abseil.
          message(FATAL_ERROR "${target}: no static archive ${archive}; "
                              "configure with -DTCPSTATES_STATIC_ABSEIL=OFF")
        endif()
        set_target_properties(${twin} PROPERTIES
          IMPORTED_LOCATION_${config} "${archive}"
          IMPORTED_LINK_INTERFACE_LANGUAGES_${config} CXX)
      endforeach()
    elseif(type STREQUAL "INTERFACE_LIBRARY")  # header-only, or a group of others
      add_library(${twin} INTERFACE IMPORTED)
    else()
      message(FATAL_ERROR "${target}: unexpected imported type ${type}")
    endif()

    # The usage requirements abseil's export sets. Dependencies point at the twins so that a
    # static link stays static all the way down (abseil links its dependencies PUBLIC, so
    # everything an archive needs is listed here).
    foreach(property IN ITEMS INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES
            INTERFACE_COMPILE_DEFINITIONS INTERFACE_COMPILE_OPTIONS INTERFACE_COMPILE_FEATURES
            INTERFACE_LINK_OPTIONS INTERFACE_LINK_DIRECTORIES INTERFACE_LINK_LIBRARIES)
      get_target_property(value ${target} ${property})
      if(value)
        if(property STREQUAL "INTERFACE_LINK_LIBRARIES")
          string(REGEX REPLACE "(^|[^A-Za-z0-9_])absl::" "\\1tcpstates_absl_static::"
                 value "${value}")
        endif()
        set_target_properties(${twin} PROPERTIES ${property} "${value}")
      endif()
    endforeach()

    # Evaluated for the target being linked (the executable, not tcpstates_core).
    set_target_properties(tcpstates_absl::${name} PROPERTIES INTERFACE_LINK_LIBRARIES
      "$<IF:$<BOOL:$<TARGET_PROPERTY:TCPSTATES_STATIC_RUNTIME>>,${twin},${target}>")
  endforeach()
endfunction()
_tcpstates_absl_targets()

if(TCPSTATES_STATIC_ABSEIL)
  # Lets --gc-sections drop our unused functions and data (abseil's archives are not built
  # with it, so there it works per object file's sections). Harmless where nothing collects.
  add_compile_options(-ffunction-sections -fdata-sections)
endif()

# Opts an executable in: static abseil (through tcpstates_absl::), libstdc++ and libgcc, and
# unused sections dropped. Only for programs; a dlopen()ed plugin must stay shared (see above).
function(tcpstates_static_runtime target)
  if(NOT TCPSTATES_STATIC_ABSEIL)
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(NOT type STREQUAL "EXECUTABLE")
    message(FATAL_ERROR "tcpstates_static_runtime(${target}): executables only, not ${type}")
  endif()
  set_target_properties(${target} PROPERTIES TCPSTATES_STATIC_RUNTIME ON)
  target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc LINKER:--gc-sections)
endfunction()
