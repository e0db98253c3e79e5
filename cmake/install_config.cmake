# Run by `cmake --install`: puts the example config files in LXCM_CONFDIR
# unless a file of that name is already there (an operator's settings
# survive a reinstall; the new example is also in the doc directory).
foreach(f lxcm-server.conf lxcm-agent.conf)
  set(dest "$ENV{DESTDIR}${LXCM_CONFDIR}/${f}")
  if(EXISTS "${dest}")
    message(STATUS "Keeping: ${dest}")
  else()
    file(INSTALL "${LXCM_CONF_SRC}/${f}" DESTINATION "${LXCM_CONFDIR}"
      PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
endforeach()
