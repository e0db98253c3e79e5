/* version.c - the version string every binary prints. */
#include "common/version.h"

const char *lxcm_version(void)
{
	return LXCM_VERSION;
}
