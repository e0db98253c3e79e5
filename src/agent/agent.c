/*
 * agent.c - the lifecycle of the running agent: its TLS contexts, signal
 * handling and the modules (the heartbeat now; the tunnel next), started
 * and stopped in one place.
 */
#include "agent/agent.h"
#include "agent/forward.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "net/tls.h"

void agent_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
	else if ((size_t)n >= errlen && errlen >= 4)
		memcpy(err + errlen - 4, "...", 4);
}

const char *agent_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case CONN_EPIN:
		return "the server's certificate does not match the pinned fingerprint";
	case CONN_ETLS:
		return "TLS handshake failed";
	case HTTP_CLIENT_ETIMEDOUT:
		return "timed out";
	case -E2BIG:
		return "response too large";
	case -EPROTO:
		return "malformed HTTP response";
	default:
		return uv_strerror(err);
	}
}

static void agent_on_signal(uv_signal_t *h, int signum)
{
	struct agent *ag = h->data;

	LOG_INFO("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
	agent_stop(ag, 0);
}

static int agent_signals(struct agent *ag)
{
	uv_signal_init(ag->loop, &ag->sig_int);
	uv_signal_init(ag->loop, &ag->sig_term);
	ag->sig_int.data = ag->sig_term.data = ag;
	ag->sig_ready = 1;
	if (uv_signal_start(&ag->sig_int, agent_on_signal, SIGINT) < 0 ||
	    uv_signal_start(&ag->sig_term, agent_on_signal, SIGTERM) < 0) {
		LOG_ERROR("cannot install signal handlers");
		return -1;
	}
	return 0;
}

int agent_init(struct agent *ag, uv_loop_t *loop)
{
	struct tls_client_opts o;
	char err[512];
	int ok;

	ag->loop = loop;
	if (state_path(ag->cfg.data_dir, AGENT_CERT_FILE, ag->cert_path, sizeof(ag->cert_path)) <
		0 ||
	    state_path(ag->cfg.data_dir, AGENT_KEY_FILE, ag->key_path, sizeof(ag->key_path)) < 0) {
		LOG_ERROR("%s: path too long", ag->cfg.data_dir);
		return -1;
	}
	memset(&o, 0, sizeof(o));
	o.cert_file = ag->cert_path;
	o.key_file = ag->key_path;
	ag->mgr_tls = tls_client_ctx_new(&o, err, sizeof(err));
	if (ag->mgr_tls == NULL) {
		LOG_ERROR("the agent's certificate: %s", err);
		return -1;
	}
	/*
	 * Heartbeats open a connection a minute: resuming the session the
	 * tunnel or the last heartbeat got spares the manager the signature
	 * and the check of our certificate in every handshake. It still knows
	 * our certificate (from the session), and the pin is still checked.
	 */
	if (tls_client_enable_resumption(ag->mgr_tls) != 0)
		LOG_WARN("TLS session resumption is off: out of memory");
	ag->lxd_tls = upstream_tls_new(&ag->cfg.up, &ok, err, sizeof(err));
	if (!ok) {
		LOG_ERROR("upstream %s: %s", ag->cfg.up.url, err);
		return -1;
	}
	/* Without it every tunnelled request would connect to LXD anew. */
	ag->lxd_pool = http_pool_new(loop, AGENT_LXD_POOL_MAX_IDLE, AGENT_LXD_POOL_IDLE_MS);
	if (ag->lxd_pool == NULL) {
		LOG_ERROR("out of memory");
		return -1;
	}
	return agent_signals(ag);
}

int agent_start(struct agent *ag)
{
	if (heartbeat_start(ag) < 0) {
		LOG_ERROR("cannot start the heartbeat: out of memory");
		return -1;
	}
	/* --once is a single heartbeat: no tunnel. */
	if (!ag->once && tunnel_client_start(ag) < 0) {
		LOG_ERROR("cannot start the tunnel: out of memory");
		return -1;
	}
	return 0;
}

void agent_stop(struct agent *ag, int exit_code)
{
	if (ag->stopping)
		return;
	ag->stopping = 1;
	ag->exit_code = exit_code;
	heartbeat_stop(ag);
	tunnel_client_stop(ag);
	/* Requests still running finish without it; it frees itself after them. */
	http_pool_close(ag->lxd_pool);
	ag->lxd_pool = NULL;
	if (ag->sig_ready) {
		uv_close((uv_handle_t *)&ag->sig_int, NULL);
		uv_close((uv_handle_t *)&ag->sig_term, NULL);
		ag->sig_ready = 0;
	}
}

void agent_free(struct agent *ag)
{
	SSL_CTX_free(ag->mgr_tls);
	SSL_CTX_free(ag->lxd_tls);
	ag->mgr_tls = ag->lxd_tls = NULL;
	state_clear(&ag->cfg);
}

int agent_manager_opts(const struct agent *ag, size_t i, struct http_client_opts *opts,
		       char *hostbuf, size_t hostlen)
{
	int port;

	memset(opts, 0, sizeof(*opts));
	if (i >= ag->cfg.naddresses ||
	    hostport_split(ag->cfg.addresses[i], hostbuf, hostlen, &port) < 0)
		return -EINVAL;
	opts->host = hostbuf;
	opts->port = port;
	opts->tls = ag->mgr_tls;
	opts->pin = ag->cfg.fingerprint;
	opts->connect_timeout_ms = 10000;
	opts->response_timeout_ms = 30000;
	opts->idle_timeout_ms = 30000;
	return 0;
}
