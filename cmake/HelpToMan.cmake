# Turns a program's --help text into a man page, so the page never drifts from the program.
# Run at build time: cmake -DPROGRAM=<exe> -DNAME=<name> -DSECTION=1 -DVERSION=<v> -DDATE=<d>
#   -DSEE_ALSO="a(1),b(5)" -DOUTPUT=<file> -P HelpToMan.cmake
#
# It reads the layout the programs' usage text has (common/command_line/command_line.cc):
#   <name>: <one-line summary, possibly wrapped>
#   Usage: <synopsis, possibly continued on indented lines>
#   <description paragraphs; a line "Exit status: ..." becomes EXIT STATUS>
#   Flags:
#     --flag=VALUE
#           description, wrapped, ending "Default: value."
#   <a closing paragraph on flag syntax, dropped: the page says it in OPTIONS>
cmake_minimum_required(VERSION 3.25)
foreach(var PROGRAM NAME SECTION VERSION DATE OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "HelpToMan.cmake: -D${var}= is required")
  endif()
endforeach()

# stdout only: stderr may carry a sanitizer build's reports.
execute_process(COMMAND ${PROGRAM} --help OUTPUT_VARIABLE help ERROR_VARIABLE help_err
                RESULT_VARIABLE exit_code)
if(NOT exit_code EQUAL 0 OR NOT help MATCHES "Usage: ")
  message(FATAL_ERROR "${PROGRAM} --help printed no usage text:\n${help}${help_err}")
endif()

# Roff-escape one line of text (also protects CMake list separators first).
function(roff_escape out text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REPLACE "-" "\\-" text "${text}")
  if(text MATCHES "^[.']")
    string(PREPEND text "\\&")
  endif()
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

# CMake lists split on ';' and get confused by unbalanced brackets: hide them while splitting.
string(REPLACE ";" "@SEMI@" help "${help}")
string(REPLACE "[" "@LB@" help "${help}")
string(REPLACE "]" "@RB@" help "${help}")
string(REPLACE "\n" ";" lines "${help}")

set(section "name")   # name, synopsis, description, options, trailer
set(summary "")
set(synopsis "")
set(description "")
set(exit_status "")
set(options "")       # roff, built up flag by flag
set(flag "")          # the flag being read: name and text so far
set(flag_text "")

macro(flush_flag)
  if(NOT flag STREQUAL "")
    string(STRIP "${flag_text}" flag_text)
    roff_escape(flag_text "${flag_text}")
    roff_escape(flag_name "${flag}")
    string(APPEND options ".TP\n.B ${flag_name}\n${flag_text}\n")
    set(flag "")
    set(flag_text "")
  endif()
endmacro()

foreach(line IN LISTS lines)
  if(section STREQUAL "name")
    if(line MATCHES "^Usage: (.*)$")
      set(synopsis "${CMAKE_MATCH_1}")
      set(section "synopsis")
    else()
      string(REGEX REPLACE "^${NAME}: " "" line "${line}")
      string(APPEND summary " ${line}")
    endif()
  elseif(section STREQUAL "synopsis")
    if(line MATCHES "^ +(.*)$")
      string(APPEND synopsis " ${CMAKE_MATCH_1}")
    else()
      set(section "description")
      set(description_lines "${line}")
    endif()
  elseif(section STREQUAL "description")
    if(line STREQUAL "Flags:")
      set(section "options")
    elseif(line MATCHES "^Exit status: (.*)$")
      set(exit_status "${CMAKE_MATCH_1}")
      set(last "exit")
    elseif(line STREQUAL "")
      string(APPEND description ".PP\n")
      set(last "")
    elseif(last STREQUAL "exit")
      string(APPEND exit_status " ${line}")
    else()
      roff_escape(escaped "${line}")
      if(line MATCHES "^  ")
        # Indented lines are examples: keep them verbatim.
        string(APPEND description ".nf\n${escaped}\n.fi\n")
      else()
        string(APPEND description "${escaped}\n")
      endif()
    endif()
  elseif(section STREQUAL "options")
    if(line MATCHES "^  (--[^ ]+)$")
      set(next_flag "${CMAKE_MATCH_1}")
      flush_flag()
      set(flag "${next_flag}")
    elseif(line MATCHES "^        (.*)$")
      string(APPEND flag_text " ${CMAKE_MATCH_1}")
    elseif(line STREQUAL "")
      flush_flag()
      set(section "trailer")
    endif()
  endif()
endforeach()
flush_flag()
if(options STREQUAL "")
  message(FATAL_ERROR "${PROGRAM} --help listed no flags:\n${help}")
endif()

string(STRIP "${summary}" summary)
string(REGEX REPLACE "\\.$" "" summary "${summary}")
roff_escape(summary "${summary}")
roff_escape(synopsis "${synopsis}")
string(REGEX REPLACE "(\\.PP\n)+" ".PP\n" description "${description}")
string(REGEX REPLACE "^\\.PP\n" "" description "${description}")
string(REGEX REPLACE "\\.PP\n$" "" description "${description}")
roff_escape(exit_status "${exit_status}")
roff_escape(name_escaped "${NAME}")
string(TOUPPER "${NAME}" NAME_UPPER)

set(page ".\\\" Generated from `${NAME} --help` by cmake/HelpToMan.cmake: edit the program's usage text.
.TH ${NAME_UPPER} ${SECTION} \"${DATE}\" \"tcpstates ${VERSION}\" \"User Commands\"
.SH NAME
${name_escaped} \\- ${summary}
.SH SYNOPSIS
${synopsis}
.SH DESCRIPTION
${description}.SH OPTIONS
Flags take one or two leading dashes and a value after \\(lq=\\(rq or as the next
argument; in flag names, \\- and _ are the same.
\\fB\\-\\-[no]\\fR\\fIflag\\fR is a boolean: \\fB\\-\\-no\\fR\\fIflag\\fR turns it off.
No other flag exists: unknown flags are a usage error (exit status 2).
${options}")
if(NOT exit_status STREQUAL "")
  string(APPEND page ".SH \"EXIT STATUS\"\n${exit_status}\n")
endif()
if(DEFINED SEE_ALSO AND NOT SEE_ALSO STREQUAL "")
  string(REPLACE "," ";" see_also "${SEE_ALSO}")
  set(refs "")
  foreach(ref IN LISTS see_also)
    if(ref MATCHES "^(.+)\\(([0-9a-z]+)\\)$")
      set(ref_section "${CMAKE_MATCH_2}")
      roff_escape(ref_name "${CMAKE_MATCH_1}")
      list(APPEND refs ".BR ${ref_name} (${ref_section})")
    endif()
  endforeach()
  list(JOIN refs ",\n" refs)
  string(APPEND page ".SH \"SEE ALSO\"\n${refs}\n.PP\n/usr/share/doc/tcpstates/README.md\n")
endif()

string(REPLACE "@SEMI@" ";" page "${page}")
string(REPLACE "@LB@" "[" page "${page}")
string(REPLACE "@RB@" "]" page "${page}")
file(WRITE "${OUTPUT}" "${page}")
