#ifndef LXCM_VERSION_H
#define LXCM_VERSION_H
/* One version for every binary; LXCM_VERSION for string literals. */
#define LXCM_VERSION "0.1.0"
const char *lxcm_version(void);
#endif
