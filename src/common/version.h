#ifndef LXCM_VERSION_H
#define LXCM_VERSION_H
const char *lxcm_version(void);
#endif
