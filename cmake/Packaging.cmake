# Installing like a package: docs, man pages, copyright, changelog and shared data next to
# the programs (whose install() rules live with their targets), and CPack DEB packages.
#
#   cmake --install <build> [--prefix /usr]     everything, one layout
#   cpack --config <build>/CPackConfig.cmake    two .debs:
#     tcpstates           /usr/bin/tcpstates, /usr/bin/tcpstates-execd,
#                         /etc/telegraf/telegraf.d/tcpstates.conf (conffile),
#                         /usr/share/tcpstates/{grafana,influxdb}/, man pages, docs
#     tcpstates-collectd  /usr/lib/collectd/tcpstates.so,
#                         /etc/collectd/collectd.conf.d/tcpstates.conf (conffile), man page,
#                         docs; Depends: collectd-core of the headers' major version,
#                         Recommends: collectd (see below)
# Files under /etc are absolute (where collectd and Telegraf look), the rest follows the prefix.
# Every install() rule names one of the two components, which are the two packages.

set(TCPSTATES_MAINTAINER "tcpstates maintainers <maintainers@users.noreply.r-seed-d172f933.example>")
set(TCPSTATES_PACKAGE_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(TCPSTATES_GENERATED_DOC_DIR ${PROJECT_BINARY_DIR}/generated/doc)
set(TCPSTATES_DOC_DIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/tcpstates)
set(TCPSTATES_COLLECTD_DOC_DIR ${CMAKE_INSTALL_DATAROOTDIR}/doc/tcpstates-collectd)
set(TCPSTATES_DATA_DIR ${CMAKE_INSTALL_DATAROOTDIR}/tcpstates)

find_program(GZIP_EXECUTABLE gzip REQUIRED)

# The release date in the changelog and man pages: SOURCE_DATE_EPOCH when set (reproducible
# builds), else the date of the checked-out commit, else today.
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND ${GIT_EXECUTABLE} log -1 --format=%ct
                    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                    OUTPUT_VARIABLE commit_time OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE git_result ERROR_QUIET)
    if(git_result EQUAL 0 AND commit_time MATCHES "^[0-9]+$")
      set(ENV{SOURCE_DATE_EPOCH} ${commit_time})
    endif()
  endif()
endif()
string(TIMESTAMP TCPSTATES_RELEASE_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
string(TIMESTAMP TCPSTATES_MAN_DATE "%B %Y" UTC)

# gzip -9n: what Debian policy asks of changelogs and man pages (no name or time stamp).
function(tcpstates_gzip target input output)
  add_custom_command(OUTPUT ${output}
    COMMAND ${GZIP_EXECUTABLE} -9nc ${input} > ${output}
    DEPENDS ${input} VERBATIM)
  set_property(TARGET ${target} APPEND PROPERTY SOURCES ${output})
endfunction()

add_custom_target(tcpstates_package_docs ALL)

# Changelog, Debian style, from the project version.
configure_file(${TCPSTATES_PACKAGE_DIR}/changelog.in ${TCPSTATES_GENERATED_DOC_DIR}/changelog @ONLY)
tcpstates_gzip(tcpstates_package_docs ${TCPSTATES_GENERATED_DOC_DIR}/changelog
               ${TCPSTATES_GENERATED_DOC_DIR}/changelog.gz)

# Man pages of the command-line programs, generated from their --help text at build time.
set(man_dir ${PROJECT_BINARY_DIR}/generated/man)
foreach(program tcpstates tcpstates-execd)
  # Only pages that exist: Telegraf ships no man page.
  set(see_also "tcpstates(1),tcpstates-execd(1),collectd-tcpstates(5)")
  string(REPLACE "${program}(1)," "" see_also "${see_also}")
  add_custom_command(OUTPUT ${man_dir}/${program}.1
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${program}> -DNAME=${program} -DSECTION=1
            -DVERSION=${PROJECT_VERSION} "-DDATE=${TCPSTATES_MAN_DATE}" "-DSEE_ALSO=${see_also}"
            -DOUTPUT=${man_dir}/${program}.1 -P ${PROJECT_SOURCE_DIR}/cmake/HelpToMan.cmake
    DEPENDS ${program} ${PROJECT_SOURCE_DIR}/cmake/HelpToMan.cmake
    COMMENT "Generating ${program}.1 from ${program} --help" VERBATIM)
  tcpstates_gzip(tcpstates_package_docs ${man_dir}/${program}.1 ${man_dir}/${program}.1.gz)
  install(FILES ${man_dir}/${program}.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          COMPONENT tcpstates)
endforeach()

# The Telegraf snippet names the program by its installed path: ${prefix}/bin, which is only
# known at install time (cpack installs with its own prefix, /usr). Every mention is
# rewritten, the commented setcap and command lines too.
install(CODE "
  set(snippet \"\$ENV{DESTDIR}${TCPSTATES_TELEGRAF_CONF_DIR}/tcpstates.conf\")
  file(READ \"\${snippet}\" text)
  string(REPLACE \"/usr/local/bin/tcpstates-execd\"
                 \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/tcpstates-execd\" text \"\${text}\")
  file(WRITE \"\${snippet}\" \"\${text}\")
  " COMPONENT tcpstates)

# Grafana and InfluxDB files: whatever conf/grafana and conf/influxdb hold at install time.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/conf/grafana ${PROJECT_SOURCE_DIR}/conf/influxdb
        DESTINATION ${TCPSTATES_DATA_DIR} COMPONENT tcpstates OPTIONAL
        FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                              WORLD_READ WORLD_EXECUTE)

# /usr/share/doc/<package>: copyright, changelog, READMEs, lintian overrides.
install(FILES ${TCPSTATES_PACKAGE_DIR}/copyright ${TCPSTATES_GENERATED_DOC_DIR}/changelog.gz
        DESTINATION ${TCPSTATES_DOC_DIR} COMPONENT tcpstates)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${TCPSTATES_DOC_DIR} COMPONENT tcpstates)
install(FILES ${PROJECT_SOURCE_DIR}/plugins/cli/README.md DESTINATION ${TCPSTATES_DOC_DIR}
        RENAME README.cli.md COMPONENT tcpstates)
install(FILES ${PROJECT_SOURCE_DIR}/plugins/telegraf/README.md DESTINATION ${TCPSTATES_DOC_DIR}
        RENAME README.telegraf.md COMPONENT tcpstates)
install(FILES ${TCPSTATES_PACKAGE_DIR}/lintian-overrides/tcpstates
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides COMPONENT tcpstates OPTIONAL)

set(TCPSTATES_PACKAGE_COMPONENTS tcpstates)
if(TCPSTATES_COLLECTD_PLUGIN)
  list(APPEND TCPSTATES_PACKAGE_COMPONENTS collectd)
  configure_file(${PROJECT_SOURCE_DIR}/docs/man/collectd-tcpstates.5.in
                 ${man_dir}/collectd-tcpstates.5 @ONLY)
  tcpstates_gzip(tcpstates_package_docs ${man_dir}/collectd-tcpstates.5
                 ${man_dir}/collectd-tcpstates.5.gz)
  install(FILES ${man_dir}/collectd-tcpstates.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5
          COMPONENT collectd)
  install(FILES ${TCPSTATES_PACKAGE_DIR}/copyright ${TCPSTATES_GENERATED_DOC_DIR}/changelog.gz
          DESTINATION ${TCPSTATES_COLLECTD_DOC_DIR} COMPONENT collectd)
  install(FILES ${PROJECT_SOURCE_DIR}/plugins/collectd/README.md
          DESTINATION ${TCPSTATES_COLLECTD_DOC_DIR} COMPONENT collectd)
  install(FILES ${TCPSTATES_PACKAGE_DIR}/lintian-overrides/tcpstates-collectd
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides COMPONENT collectd OPTIONAL)
endif()

# Debian's hardening (what dpkg-buildflags asks for): fortified libc calls in every object of
# the shipped programs, and full RELRO. Optimised builds only (_FORTIFY_SOURCE needs -O), and
# not under the sanitizers, which replace those checks.
option(TCPSTATES_HARDENING "Build with _FORTIFY_SOURCE=2 and -z relro -z now" ON)
if(TCPSTATES_HARDENING AND NOT TCPSTATES_SANITIZE)
  set(optimised $<CONFIG:Release,RelWithDebInfo,MinSizeRel>)
  foreach(target tcpstates_core tcpstates_command_line tcpstates_cli_render tcpstates
                 tcpstates_line_protocol tcpstates_execd tcpstates-execd
                 tcpstates_collectd_options tcpstates_collectd)
    if(TARGET ${target})
      target_compile_options(${target} PRIVATE $<${optimised}:-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2>)
    endif()
  endforeach()
  foreach(target tcpstates tcpstates-execd tcpstates_collectd)
    if(TARGET ${target})
      target_link_options(${target} PRIVATE LINKER:-z,relro LINKER:-z,now)
    endif()
  endforeach()
endif()

# ---- CPack: one .deb per component ---------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tcpstates)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${TCPSTATES_MAINTAINER}")
# CPack's own default, on purpose: CPackDeb then takes each package's synopsis from the first
# line of its CPACK_DEBIAN_<COMPONENT>_DESCRIPTION instead of prepending one shared summary.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_NAME} built using CMake")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_COMPONENTS_ALL ${TCPSTATES_PACKAGE_COMPONENTS})
# Binaries are shipped stripped. No -dbgsym packages: CMake 3.25's CPACK_DEBIAN_DEBUGINFO_PACKAGE
# writes build-tree paths into their md5sums and gives them no copyright (lintian errors);
# the unstripped binaries stay in the build tree.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>_<arch>.deb
# A native package: the Debian version is the project version, as --version prints it.
set(CPACK_DEBIAN_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TCPSTATES_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dpkg-shlibdeps: libc6, libstdc++6, libabsl*
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# The files under /etc are conffiles: dpkg keeps the operator's edits and purge removes them.
file(WRITE ${PROJECT_BINARY_DIR}/packaging/tcpstates/conffiles
     "${TCPSTATES_TELEGRAF_CONF_DIR}/tcpstates.conf\n")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/tcpstates-collectd/conffiles
     "${TCPSTATES_COLLECTD_CONF_DIR}/tcpstates.conf\n")

set(CPACK_DEBIAN_TCPSTATES_PACKAGE_NAME tcpstates)
set(CPACK_DEBIAN_TCPSTATES_DESCRIPTION
"TCP connection-state metrics: CLI and Telegraf input
tcpstates counts the TCP sockets of the host's network namespace per state
(netlink sock_diag, or /proc/net/tcp where netlink is not allowed) and says
who and where: the processes holding CLOSE_WAIT sockets, listening ports that
vanished, and the remote endpoint closest to exhausting the ephemeral ports.

This package holds the command-line snapshot (tcpstates), the Telegraf
[[inputs.execd]] program printing InfluxDB line protocol (tcpstates-execd)
with its Telegraf configuration, and a Grafana dashboard and InfluxDB queries
in /usr/share/tcpstates.")
# libcap2-bin: setcap, for the optional capabilities (packaging/maintainer-scripts/tcpstates/postinst).
set(CPACK_DEBIAN_TCPSTATES_PACKAGE_SUGGESTS "telegraf, libcap2-bin")
set(CPACK_DEBIAN_TCPSTATES_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/tcpstates/conffiles
    ${TCPSTATES_PACKAGE_DIR}/maintainer-scripts/tcpstates/postinst)

set(CPACK_DEBIAN_COLLECTD_PACKAGE_NAME tcpstates-collectd)
set(CPACK_DEBIAN_COLLECTD_DESCRIPTION
"TCP connection-state metrics: collectd plugin
tcpstates counts the TCP sockets of the host's network namespace per state
(netlink sock_diag, or /proc/net/tcp where netlink is not allowed) and says
who and where: the processes holding CLOSE_WAIT sockets, listening ports that
vanished, and the remote endpoint closest to exhausting the ephemeral ports.

This package holds the collectd read plugin tcpstates.so, dispatching
tcp_connections values named like the tcpconns plugin's, and its
configuration in /etc/collectd/collectd.conf.d, which Debian's collectd.conf
includes.")
# The plugin is built against collectd's headers: their struct layouts and calls are its ABI.
# Lower bound: the headers' version, the one it is built and tested with; upper: collectd 6
# replaces the plugin API (<< 6~, so that 6.0~rc1 counts as 6 too).
# collectd-core alone never starts: it ships no /etc/collectd/collectd.conf (collectd.service
# has ConditionPathExists on it, and the Include of collectd.conf.d/ that loads our snippet is
# in that file), which the "collectd" package provides. Recommends, not Depends, so that an
# operator's own collectd.conf (configuration management) can stand in for it.
if(TCPSTATES_COLLECTD_PLUGIN)
  file(STRINGS ${COLLECTD_INCLUDE_DIR}/collectd/core/config.h collectd_version_line
       REGEX "^#define PACKAGE_VERSION \"[0-9]+\\.[0-9]+")
  if(NOT collectd_version_line MATCHES "\"([0-9]+)\\.([0-9]+)")
    message(FATAL_ERROR "no PACKAGE_VERSION in ${COLLECTD_INCLUDE_DIR}/collectd/core/config.h")
  endif()
  math(EXPR collectd_next_major "${CMAKE_MATCH_1} + 1")
  set(CPACK_DEBIAN_COLLECTD_PACKAGE_DEPENDS
      "collectd-core (>= ${CMAKE_MATCH_1}.${CMAKE_MATCH_2}), collectd-core (<< ${collectd_next_major}~)")
endif()
set(CPACK_DEBIAN_COLLECTD_PACKAGE_RECOMMENDS "collectd")
set(CPACK_DEBIAN_COLLECTD_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/tcpstates-collectd/conffiles)

include(CPack)

# Installation tests (tests/install): the cmake --install file list whenever tests are built;
# the apt-get install/purge test of the .debs changes system packages, so it is opt-in.
option(TCPSTATES_INSTALL_TESTS "Register the apt-get install/purge test of the .debs (label install)" OFF)
if(TCPSTATES_INSTALL_TESTS AND NOT TCPSTATES_BUILD_TESTS)
  message(FATAL_ERROR "TCPSTATES_INSTALL_TESTS needs TCPSTATES_BUILD_TESTS (the socket workload)")
endif()
if(TCPSTATES_BUILD_TESTS)
  enable_testing()
  add_subdirectory(tests/install)
endif()
