/*
 * metrics_listener.h - the plain-HTTP listener of --metrics-addr:
 * GET /metrics, /healthz and /readyz (see metrics_listener.c).
 */
#ifndef LXCM_METRICS_LISTENER_H
#define LXCM_METRICS_LISTENER_H

struct server;

/* Starts it when --metrics-addr was given (else 0 and nothing). 0 or a uv error, logged. */
int metrics_listener_start(struct server *srv);
/* Stops it; safe when it never started. */
void metrics_listener_stop(struct server *srv);

#endif
