/* server.h - shared state of one lxcm-server process (filled in as it lands). */
#ifndef LXCM_SERVER_H
#define LXCM_SERVER_H
#endif
