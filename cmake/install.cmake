# Installation (`make install` with PREFIX, SYSCONFDIR and DESTDIR; the .deb
# in packaging/debian): the three binaries, man pages and the bash completion
# generated from the binaries' --help at build time, the systemd units and
# the example config files. docs/operations.md, "Install as a service".
include(GNUInstallDirs)
find_package(Python3 REQUIRED COMPONENTS Interpreter)

file(STRINGS ${CMAKE_SOURCE_DIR}/src/common/version.h LXCM_VERSION_LINE
  REGEX "^#define LXCM_VERSION ")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" LXCM_VERSION "${LXCM_VERSION_LINE}")

set(LXCM_SYSTEMD_UNITDIR "" CACHE PATH
  "where the systemd units go (default: PREFIX/lib/systemd/system)")
if(LXCM_SYSTEMD_UNITDIR)
  set(LXCM_UNITDIR ${LXCM_SYSTEMD_UNITDIR})
else()
  set(LXCM_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
# The units name these paths: they are the ones without DESTDIR.
set(LXCM_SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
set(LXCM_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/lxcm)
foreach(unit lxcm-server lxcm-agent)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/systemd/${unit}.service.in
    ${CMAKE_BINARY_DIR}/systemd/${unit}.service @ONLY)
endforeach()

# Man pages: hand-written templates with the --help texts pasted in.
set(LXCM_GENERATED)
foreach(page lxcm-server.8 lxcm-agent.8 lxcm.1)
  string(REGEX REPLACE "\\.[18]$" "" bin ${page})
  set(out ${CMAKE_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/gen-man.py $<TARGET_FILE:${bin}>
            ${CMAKE_SOURCE_DIR}/packaging/man/${page}.in ${out} ${LXCM_VERSION} ${LXCM_CONFDIR}
    DEPENDS ${bin} ${CMAKE_SOURCE_DIR}/packaging/man/${page}.in
            ${CMAKE_SOURCE_DIR}/scripts/gen-man.py ${CMAKE_SOURCE_DIR}/scripts/helptext.py
    VERBATIM)
  list(APPEND LXCM_GENERATED ${out})
endforeach()
set(LXCM_COMPLETION ${CMAKE_BINARY_DIR}/completion/lxcm)
add_custom_command(OUTPUT ${LXCM_COMPLETION}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/completion
  COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/gen-completion.py
          $<TARGET_FILE:lxcm> ${LXCM_COMPLETION}
  DEPENDS lxcm ${CMAKE_SOURCE_DIR}/scripts/gen-completion.py ${CMAKE_SOURCE_DIR}/scripts/helptext.py
  VERBATIM)
list(APPEND LXCM_GENERATED ${LXCM_COMPLETION})
add_custom_target(lxcm_docs ALL DEPENDS ${LXCM_GENERATED})

install(TARGETS lxcm-server lxcm-agent RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS lxcm RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_BINARY_DIR}/man/lxcm.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_BINARY_DIR}/man/lxcm-server.8 ${CMAKE_BINARY_DIR}/man/lxcm-agent.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${LXCM_COMPLETION}
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${CMAKE_BINARY_DIR}/systemd/lxcm-server.service
  ${CMAKE_BINARY_DIR}/systemd/lxcm-agent.service DESTINATION ${LXCM_UNITDIR})
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/architecture.md
  ${CMAKE_SOURCE_DIR}/docs/configuration.md ${CMAKE_SOURCE_DIR}/docs/operations.md
  ${CMAKE_SOURCE_DIR}/docs/protocol.md ${CMAKE_SOURCE_DIR}/docs/protocol-v1.md
  ${CMAKE_SOURCE_DIR}/docs/security.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${CMAKE_SOURCE_DIR}/packaging/config/lxcm-server.conf
  ${CMAKE_SOURCE_DIR}/packaging/config/lxcm-agent.conf
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
# The config files themselves: an operator's edited copy is never replaced.
install(CODE "set(LXCM_CONFDIR \"${LXCM_CONFDIR}\")
set(LXCM_CONF_SRC \"${CMAKE_SOURCE_DIR}/packaging/config\")")
install(SCRIPT ${CMAKE_SOURCE_DIR}/cmake/install_config.cmake)
